"""The Ray Tune function trainable: a thin adapter around `lift.train.fit`.

No training logic lives here. The adapter
- builds the trial's LIFT config from the Tune config (arm config + the searched values, seeded
  from the config, since `reuse_actors=True` runs several trials in one process),
- forwards each validation's metrics and checkpoint folder to ``ray.tune.report``,
- resumes from ``ray.tune.get_checkpoint()`` after a restart (worker death or `Tuner.restore`),
- writes the run folder (config.yaml, TensorBoard events, checkpoints, samples.parquet) into the
  trial's working directory, which Ray syncs into the trial folder of the study
  (``SyncConfig(sync_artifacts=True)``).

Why the working directory and not ``get_context().get_trial_dir()``: in Ray 2.60 the latter is
the driver's staging folder for a trial on a fresh actor but the working directory for a trial on a
reused actor, and only the working directory is synced from a worker node. Ray changes into the
working directory before the trial starts (``RAY_CHDIR_TO_TRIAL_DIR``, on by default); with it off
the adapter falls back to ``get_trial_dir()``.

Inputs (built by lift.tune.study): the arms' training configs arrive once through
``tune.with_parameters(lift_trainable, arm_configs={arm_key: <lift Config as dict>})`` (Ray's
object store, so trial configs and result files stay small), and each trial's Tune config is::

    {"study": {"stage": "tune" | "confirm", "arm": arm_key, "slug": str, "seed": int},
     "loss.lpips": 0.1, "optim.lr": 3e-4, ...}      # searched values, dotted LIFT keys
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import ray.tune
import torch
from ray.tune import Checkpoint

from lift.atomic import atomic_path, atomic_write_text, write_json
from lift.checkpoint import load_checkpoint
from lift.config import Config, apply_overrides, config_from_dict
from lift.train import fit
from lift.tune.ledger import TrialLedger

TIMING_FILE = "trial_timing.json"
TEST_STAGE = "confirm"


def trial_config(config: dict[str, Any], arm_configs: dict[str, dict[str, Any]]) -> tuple[Config, dict[str, Any]]:
    """(LIFT config of this trial, study info) from a Tune config (layout in the module doc)."""
    study = dict(config["study"])
    base = config_from_dict(arm_configs[study["arm"]])
    searched = {k: v for k, v in config.items() if "." in k}
    cfg = apply_overrides(base, {**searched, "train.seed": int(study["seed"])})
    return cfg, study


def _trial_dir() -> Path:
    if os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", "1") != "0":
        return Path.cwd()
    return Path(ray.tune.get_context().get_trial_dir())


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            out[k] = v
        elif isinstance(v, float):
            out[k] = v
        elif isinstance(v, torch.Tensor) and v.numel() == 1:
            out[k] = float(v)
    # Ray fills its own time_total_s (time between reports); keep fit's figure under its own name.
    if "time_total_s" in out:
        out["fit_time_s"] = out.pop("time_total_s")
    return out


def _restore_run_files(checkpoint: Checkpoint, run_dir: Path) -> Path:
    """Copy the reported checkpoint files into the run folder and return the one to resume from.

    After `Tuner.restore` the working directory is new and empty; best.pt must come back too so
    that the final evaluation uses the best epoch, not the last one.
    """
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    with checkpoint.as_directory() as src:
        for name in ("last.pt", "best.pt"):
            path = Path(src) / name
            if path.is_file():
                with atomic_path(ckpt_dir / name) as tmp:
                    shutil.copyfile(path, tmp)
        # The attempts so far: kept in the run folder after a worker restart on the same node,
        # only in the checkpoint after Tuner.restore (new session) or on another node.
        timing = Path(src) / TIMING_FILE
        if timing.is_file() and not (run_dir / TIMING_FILE).is_file():
            shutil.copyfile(timing, run_dir / TIMING_FILE)
    last = ckpt_dir / "last.pt"
    if not last.is_file():
        raise FileNotFoundError(f"the trial's checkpoint {checkpoint.path} holds no last.pt to resume from")
    return last


def _checkpoint_epoch(path: Path | None) -> int | None:
    if path is None:
        return None
    return int(load_checkpoint(path)["epoch"])


class _TimingLog:
    """One record per attempt of this trial (a restart adds one) in trial_timing.json, updated at
    every report: a trial that ASHA stops never returns from its last report."""

    def __init__(self, run_dir: Path, record: dict[str, Any]) -> None:
        self.path = run_dir / TIMING_FILE
        previous = json.loads(self.path.read_text()) if self.path.is_file() else []
        self.records = [r for r in previous if isinstance(r, dict)]
        self.record = {**record, "start": time.time()}
        self.records.append(self.record)

    def update(self, checkpoint_dir: Path | None = None, **values: Any) -> None:
        """Record progress; with `checkpoint_dir`, also into the checkpoint about to be reported,
        so that the history travels with it to wherever the trial resumes."""
        now = time.time()
        self.record.update(values, end=now, seconds=now - self.record["start"])
        write_json(self.path, self.records)
        if checkpoint_dir is not None:
            write_json(Path(checkpoint_dir) / TIMING_FILE, self.records)


def lift_trainable(config: dict[str, Any], arm_configs: dict[str, dict[str, Any]],
                   ledger_dir: str | None = None) -> None:
    """Ray Tune function trainable running one LIFT training (and, in the confirm stage, its
    evaluation on the test split). Wrap it with ``tune.with_parameters(..., arm_configs=...,
    ledger_dir=...)``.

    A trial the study's ledger records as finished (lift.tune.ledger) returns at once: it was
    restarted only because the crash left Tune's snapshot behind, and must not train again."""
    trial_id = ray.tune.get_context().get_trial_id()
    if ledger_dir is not None and trial_id in TrialLedger(ledger_dir):
        return
    cfg, study = trial_config(config, arm_configs)
    run_dir = _trial_dir()
    cfg.paths.run_dir = str(run_dir)

    # Ray sets the thread count only for the first task of a worker; a trial gets what it asked for.
    cpus = ray.tune.get_context().get_trial_resources().required_resources.get("CPU", 1.0)
    torch.set_num_threads(max(1, int(math.floor(cpus))))

    checkpoint = ray.tune.get_checkpoint()
    resume_from = _restore_run_files(checkpoint, run_dir) if checkpoint is not None else None
    timing = _TimingLog(run_dir, {"trial_id": trial_id, "stage": study["stage"], "arm": study["arm"],
                                  "seed": int(study["seed"]),
                                  "resumed_from_epoch": _checkpoint_epoch(resume_from)})

    def reporter(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        payload = _scalar_metrics(metrics)
        timing.update(checkpoint_dir, epoch=payload.get("epoch"))
        if checkpoint_dir is not None:
            ray.tune.report(payload, checkpoint=Checkpoint.from_directory(str(checkpoint_dir)))
        else:
            ray.tune.report(payload)

    evaluate_split = "test" if study["stage"] == TEST_STAGE else "val"
    # The study's arm name (it may name more factors than window and offset) labels every table row.
    result = fit(cfg, reporter=reporter, resume_from=resume_from, evaluate_split=evaluate_split, trial_id=trial_id,
                 arm=study["arm"])
    timing.update(epoch=result.epochs_completed, finished=True,
                  samples=str(result.samples_path.relative_to(run_dir)) if result.samples_path else None)
