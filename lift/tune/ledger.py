"""The study's ledger of finished trials: the durable record a resume trusts.

Tune's experiment snapshot (what ``Tuner.restore`` works from) is written every few seconds and
uploaded asynchronously, so a crash of the whole study (driver, local Ray and workers killed at
once: a power cut) can leave it one step behind: a trial that had finished shows as running, or
does not show at all. Restored from such a snapshot, Tune would train the finished trial again
(from its last checkpoint, or from scratch under a new id).

So the study keeps its own record. When a trial ends (trained to the end, or stopped by ASHA),
the first hook Tune calls is the scheduler's ``on_trial_complete`` (before the searcher, and so
before Optuna and the confirm queue hear of it, and before any snapshot); there
:class:`lift.tune.search.PerArmScheduler` writes ``<study>/ledger/<trial id>.json`` atomically:
the trial's study info (stage, arm, seed), its searched parameters, its last result, its folder and
its checkpoint. A trial that errored is not finished (a resume restarts it).

On ``--resume`` the ledger is trusted over the snapshot:

- the trainable of a trial in the ledger returns at once, without training or writing anything
  (:func:`lift.tune.trainable.lift_trainable`), so a trial the snapshot shows as running ends
  with its recorded outcome;
- :class:`lift.tune.search.ArmSearcher` uses the ledger's result for such a trial, adopts ledger
  trials the snapshot never saw (counted for their arm, told to Optuna through its public API),
  and so hands out no trial twice;
- the study summary takes each finished trial's status and final metrics from the ledger, and a
  trial folder in the ledger is never deleted.

Entries are written once: a later completion of the same trial (the instant return above) does not
overwrite the first record. An entry's ``path`` and ``checkpoint`` are stored relative to the study
folder (the ledger's parent), and read back under wherever the folder is now: a copied or moved
study reads its own trial folders, never the original's. A damaged entry is refused (StudyError
naming its file), never half-trusted.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from lift.atomic import write_json
from lift.tune.study_config import StudyError

LEDGER_DIR = "ledger"
PATH_FIELDS = ("path", "checkpoint")  # stored relative to the study folder
REQUIRED = ("trial_id", "stage", "arm", "study", "params", "result", "path")


def _scalars(result: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON-safe scalar fields of a Tune result (finite floats, ints, bools, strings)."""
    out: dict[str, Any] = {}
    for key, value in (result or {}).items():
        if isinstance(value, bool) or isinstance(value, (int, str)):
            out[key] = value
        elif isinstance(value, float) and math.isfinite(value):
            out[key] = value
    return out


def params_of(config: dict[str, Any]) -> dict[str, Any]:
    """The searched values of a trial's Tune config (dotted LIFT keys)."""
    return {k: v for k, v in config.items() if "." in k}


def trial_identity(trial_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """Which trial of the study this is: its id, stage, arm, seed and (confirm runs) tuned trial."""
    study = config.get("study", {})
    return {"trial_id": trial_id, "stage": study.get("stage"), "arm": study.get("arm"), "seed": study.get("seed"),
            "tuned_trial": study.get("tuned_trial")}


def entry_for(trial_id: str, config: dict[str, Any], result: dict[str, Any] | None, *, path: str | None,
              checkpoint: str | None) -> dict[str, Any]:
    """A ledger entry for a trial that ended without error."""
    return {
        **trial_identity(trial_id, config),
        "study": dict(config.get("study", {})),
        "params": params_of(config),
        "result": _scalars(result),
        "path": path,
        "checkpoint": checkpoint,
        "recorded": time.time(),
    }


class TrialLedger:
    """One JSON file per finished trial under `folder` (``<study>/ledger``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def study_root(self) -> Path:
        return self.folder.parent

    def _file(self, trial_id: str) -> Path:
        return self.folder / f"{trial_id}.json"

    def _stored(self, value: str | None) -> str | None:
        """A path inside the study folder, relative to it (paths elsewhere stay as given)."""
        if value is None:
            return None
        absolute = os.path.abspath(value)
        root = os.path.abspath(self.study_root)
        return os.path.relpath(absolute, root) if absolute.startswith(root + os.sep) else value

    def _read(self, path: Path) -> dict[str, Any]:
        """One entry, its paths under the study folder as it is now; StudyError if damaged."""
        try:
            entry = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            entry = None
        missing = [k for k in REQUIRED if k not in entry] if isinstance(entry, dict) else list(REQUIRED)
        if missing or entry["trial_id"] != path.stem:
            what = ("not valid JSON: truncated or damaged" if entry is None else
                    f"missing {', '.join(missing)}" if missing else f"it names trial {entry['trial_id']!r}")
            raise StudyError(f"{path}: damaged ledger entry ({what}); it only records that trial {path.stem} finished: "
                             "delete it and resume (the trial's outcome is then taken from Tune's snapshot, or the "
                             "trial continues from its last checkpoint)")
        for key in PATH_FIELDS:
            if isinstance(entry.get(key), str) and not os.path.isabs(entry[key]):
                entry[key] = str(self.study_root / entry[key])
        return entry

    def record(self, entry: dict[str, Any]) -> bool:
        """Write `entry` durably unless its trial is already recorded; returns whether it wrote."""
        path = self._file(entry["trial_id"])
        if path.is_file():
            return False
        write_json(path, {**entry, **{k: self._stored(entry.get(k)) for k in PATH_FIELDS}})
        return True

    def get(self, trial_id: str) -> dict[str, Any] | None:
        path = self._file(trial_id)
        return self._read(path) if path.is_file() else None

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every recorded trial, by trial id (StudyError naming a damaged entry)."""
        if not self.folder.is_dir():
            return {}
        return {entry["trial_id"]: entry for entry in map(self._read, sorted(self.folder.glob("*.json")))}

    def __contains__(self, trial_id: str) -> bool:
        return self._file(trial_id).is_file()
