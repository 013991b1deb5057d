"""The study folder: where each stage's files live, its creation or resume check, and the clock
that sums stage wall times over driver sessions (layout: :mod:`lift.tune.study`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lift.atomic import atomic_write_text, write_json
from lift.config import dict_differences
from lift.tune.ledger import LEDGER_DIR
from lift.tune.study_config import StudyConfig, StudyError, study_from_dict, study_to_yaml

TRIALS_RESULT = "trials_result.json"
SUMMARY = "study_summary.json"
STATE = "state.json"
TEST_TABLE = "test_samples.parquet"
SAMPLES = "samples.parquet"
class StudyInterrupted(RuntimeError):
    """A stage ended with unfinished trials (Ctrl-C, or the driver lost): run again with --resume."""


@dataclass(frozen=True)
class StudyPaths:
    root: Path

    @property
    def study_yaml(self) -> Path:
        return self.root / "study.yaml"

    @property
    def arms_dir(self) -> Path:
        return self.root / "arms"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER_DIR

    @property
    def baselines_dir(self) -> Path:
        return self.root / "baselines"

    @property
    def test_table(self) -> Path:
        return self.root / TEST_TABLE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def state(self) -> Path:
        return self.root / STATE


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def prepare_folder(paths: StudyPaths, cfg: StudyConfig, *, resume: bool) -> StudyConfig:
    """Create the study folder, or check that a resumed one was made by the same study config."""
    if paths.study_yaml.is_file():
        if not resume:
            raise StudyError(f"--out {paths.root}: a study already lives there; pass --resume to continue it "
                             "or choose another --out")
        stored = study_from_dict(yaml.safe_load(paths.study_yaml.read_text()) or {})
        diffs = dict_differences(stored.identity(), cfg.identity())
        if diffs:
            raise StudyError(f"--resume {paths.root}: the study config differs from the stored {paths.study_yaml}: "
                             + "; ".join(diffs) + ". Resume with the same settings, or choose another --out")
        # Resources may change between sessions (another machine); the rest is the study.
        stored.resources = cfg.resources
        return stored
    if paths.root.exists() and any(paths.root.iterdir()):
        raise StudyError(f"--out {paths.root}: the folder exists and is not a study folder (no study.yaml); "
                         "choose an empty or new folder")
    paths.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths.study_yaml, study_to_yaml(cfg))
    return cfg


class StageClock:
    """Wall time per stage summed over driver sessions, kept in state.json."""

    def __init__(self, paths: StudyPaths) -> None:
        self.path = paths.state
        self.state = read_json(self.path) if self.path.is_file() else {"stages": {}, "sessions": 0}
        self.state["sessions"] = int(self.state.get("sessions", 0)) + 1
        self._save()

    def _save(self) -> None:
        write_json(self.path, self.state)

    def add(self, stage: str, seconds: float, *, slots: int | None = None) -> None:
        entry = self.state["stages"].setdefault(stage, {"wall_s": 0.0, "slots": slots})
        entry["wall_s"] = float(entry["wall_s"]) + float(seconds)
        if slots is not None:
            entry["slots"] = slots
        self._save()

    def stages(self) -> dict[str, dict[str, Any]]:
        return self.state["stages"]


def interrupted(what: str, paths: StudyPaths) -> StudyInterrupted:
    return StudyInterrupted(f"{what}; run the study again with --resume to continue ({paths.trials_dir})")
