"""The context-ablation study on Ray Tune + Optuna, as importable stages.

This module is the study's entry point (:func:`run_study`) and its last stages (baselines,
summary); validation lives in :mod:`lift.tune.study_validation`, the Tune experiment of stages 2
and 3 in :mod:`lift.tune.trials`, the folder layout and resume check in :mod:`lift.tune.study_folder`.

Protocol (shared/design/ARCHITECTURE.md, "Study protocol"):

1. **Validate** everything before any trial starts: the study config, every arm's training config
   and model, the data (the widest arm must fit the train sequences, the study's largest
   window/offset the val and test ones), the design (:func:`check_design`: with the test split's
   independent sources, the confirm seeds and the report's family, can the report reject H0 at
   all? If not, the study refuses to start unless ``allow_underpowered``) and the cluster (a trial
   asking for a GPU the cluster lacks would pend forever).
2. **Tune**: every arm (``arms.design`` over ``arms.factors``, :func:`lift.tune.study_config.arms_of`;
   window 3 once per other setting, its offset means nothing) gets ``search.num_samples`` trials
   (window 3: as many as all offsets of a window together, the budget rule of
   :func:`lift.tune.study_config.trials_per_arm`) from its own seeded TPE study (sampler seed = study
   seed + arm index; a third of the budget, at least 2, are random start-up trials) over the loss
   weights and learning rate of ``search.space``, behind its own ``ConcurrencyLimiter``
   (``search.max_concurrent``), with its own ``ASHAScheduler`` on ``val_psnr`` (time attribute
   ``training_iteration`` = epochs: one validation per epoch). Every tuning trial trains with the
   study seed (common random numbers: trials differ by their hyperparameters only).
   ASHA vs. Optuna: a trial ASHA stops is told to Optuna as PRUNED, not COMPLETE with its early
   value; see :mod:`lift.tune.search` for why and how TPE uses it.
3. **Confirm**: as soon as all tuning trials of an arm have ended, its best full-budget trial
   (highest final ``val_psnr``; :func:`lift.tune.search.choose_best`) is retrained with
   ``confirm.seeds`` fresh seeds (study seed + 1000 + i), and each run's best checkpoint (by
   validation PSNR) is evaluated on the held-out test split (``fit(..., evaluate_split="test")``).
   Tuning and confirm runs of all arms form **one** Ray experiment
   (:class:`~lift.tune.search.ArmSearcher`, :class:`~lift.tune.search.PerArmScheduler`): confirm
   runs of a finished arm fill the slots while other arms still tune, and actors
   (``reuse_actors=True``; every trial is seeded from its config) serve the whole study.
   Every run evaluates on ``data.eval_max_window/offset`` = the study's largest window/offset,
   so all arms share the same validation and test sample ids.
4. **Baselines** ``repeat`` and ``blend`` are evaluated once, as a Ray task started beside the
   trials (they need no training), on the same test sample ids.

Study folder (``--out``)::

    study.yaml                the resolved study config (a resume must match it), ending with the
                              SHA-256 of its text: a resume refuses a damaged or truncated plan
    .lock                     held (fcntl.flock) by the driver of the folder: pid, host, start time
    arms/<slug>.yaml          each arm's resolved training config before the search values
    arms/<slug>_best.yaml     ... with its best tuning trial's values: what the confirm runs train
    optuna.db                 Optuna RDB storage (sqlite), one study per arm, named
                              "<study name>/<arm key>"; open with optuna-dashboard or
                              optuna.load_study(storage="sqlite:///.../optuna.db", ...)
    trials/                   the Ray experiment of the study (Tuner.restore-able):
      <slug>_<trial id>/            a tuning trial: Ray's result.json, progress.csv,
                                    checkpoint_*/, and the run folder of lift.train: config.yaml,
                                    TensorBoard events, checkpoints/{last,best}.pt,
                                    samples.parquet (split "val"), trial_timing.json
      <slug>_seed<seed>_<trial id>/ a confirm run, the same with samples.parquet of split "test"
      trials_result.json            marker: per arm its trials and best one, the confirm runs
    ledger/<trial id>.json    one per finished trial (trained to the end or stopped by ASHA), written
                              when it ends, before anything else hears of it: what a resume trusts
                              (lift.tune.ledger)
    baselines/samples.parquet the baselines on the test sample ids (marker of that stage)
    test_samples.parquet      every test table concatenated (checked: same sample ids); it is
                              not named samples.*, so `lift.report <folder>` reads each table once
    study_summary.json        arms, trials, failures, stage timings, overhead, where things are
    state.json                stage wall times summed over driver sessions (for the overhead)

The report goes to ``reports/<study folder name>/`` via ``python -m lift.report <study folder>``.

Resume: running again on the same folder skips finished stages (their marker files), restores an
interrupted Ray experiment with ``Tuner.restore(resume_unfinished=True, restart_errored=True)``
(finished trials are kept, running ones continue from their last checkpoint, failed ones start
again; the search state, Optuna's included, comes back from Tune's snapshot and ``optuna.db``),
and starts afresh if Tune never recorded state (dropping orphaned Optuna studies).
Tune's snapshot can lag a crash of the whole study (driver, local Ray and workers killed at once),
so finished trials are taken from the study's own ledger (:mod:`lift.tune.ledger`): a finished
trial is never trained again, never deleted, and keeps its recorded outcome, in Tune, in Optuna
and in the summary.
The folder is self-contained: a copy (``cp -r``) or a moved folder resumes in place and writes
nowhere else (:mod:`lift.tune.study_folder`); one driver at a time holds it, and a resume first
verifies study.yaml, state.json, the ledger and optuna.db, refusing a damaged file by name.
``CheckpointConfig(num_to_keep=1)`` makes Tune snapshot the experiment after every checkpointed
epoch, so the snapshot never lags a finished epoch. ``FailureConfig(max_failures)`` restarts a
trial whose worker died from its last checkpoint. Ray does not snapshot ASHA's rungs: after a
resume they refill from new results only.

Overhead: ``trial time`` is the sum over trials of the adapter's own wall time (setup, training,
evaluation; ``trial_timing.json``) plus the baselines task; ``capacity`` is, per stage, its wall
time x the trials that could run at once (the cluster's slots for one trial's resources, at most
the number of trials); overhead fraction = 1 - trial time / capacity: everything that is not a
trial working (validation, actor start-up, scheduling, idle slots). Ray's own start-up happens
before the study and is reported separately by the CLI.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray

from lift.atomic import atomic_path, write_json
from lift.config import config_from_dict
from lift.data import build_dataset
from lift.evaluate import (available_baselines, check_samples_table, evaluate_baselines, read_samples_table,
                           write_samples_table)
from lift.data.loading import make_loader
from lift.devices import resolve_device
from lift.tune.search import optuna_study_name
from lift.tune.study_config import StudyConfig, StudyError, trials_per_arm
from lift.tune.study_folder import (
    SAMPLES,
    TRIALS_RESULT,
    StageClock,
    StudyInterrupted,
    StudyPaths,
    hold_folder,
    prepare_folder,
    read_json,
)
from lift.tune.study_validation import ValidatedStudy, check_cluster, check_design, validate_data, validate_study
from lift.tune.trials import run_trials, trial_dirname


# ---------------------------------------------------------------------------------------------
# Stage 4: baselines
# ---------------------------------------------------------------------------------------------

def _evaluate_baselines(cfg_dict: dict[str, Any], seed: int) -> tuple[pd.DataFrame, float]:
    """Body of the baselines task (runs on a worker with one trial's resources)."""
    t0 = time.perf_counter()
    cfg = config_from_dict(cfg_dict)
    device = resolve_device(cfg.train.device)
    dataset = build_dataset(cfg.data, "test", train=False, seed=seed)
    loader = make_loader(dataset, cfg, train=False, device=device)
    df = evaluate_baselines(loader, eval_cfg=cfg.eval, split="test", device=device, seed=seed,
                            baselines=available_baselines(cfg.data.gap), trial_id="baseline", progress=False)
    return df, time.perf_counter() - t0


def start_baselines(paths: StudyPaths, study: ValidatedStudy) -> Any:
    """Launch the baselines as a Ray task (they need no training, so they run beside the tuning
    stage); None if their table already exists."""
    if (paths.baselines_dir / SAMPLES).is_file():
        return None
    cfg = study.config
    # Any arm's config gives the same test sample ids (eval_max_window/offset); the baselines only
    # read the two anchors.
    tcfg = study.train_configs[study.arms[0].key]
    task = ray.remote(num_cpus=cfg.resources.cpus_per_trial, num_gpus=cfg.resources.gpus_per_trial,
                      max_retries=cfg.failure.max_failures)(_evaluate_baselines)
    return task.remote(tcfg.to_dict(), cfg.seed)


def finish_baselines(paths: StudyPaths, pending: Any) -> tuple[Path, float]:
    """Wait for the baselines task, write its table; returns (table, task seconds)."""
    out = paths.baselines_dir / SAMPLES
    if pending is None:
        state = read_json(paths.baselines_dir / "timing.json") if (paths.baselines_dir / "timing.json").is_file() else {}
        return out, float(state.get("seconds", 0.0))
    df, seconds = ray.get(pending)
    write_json(paths.baselines_dir / "timing.json", {"seconds": seconds})
    return write_samples_table(df, paths.baselines_dir), seconds


def combine_test_tables(paths: StudyPaths, confirm_result: dict[str, Any], baselines_table: Path) -> Path:
    """All test tables in one file, after checking that every run covers the same sample ids."""
    tables = [read_samples_table(r["test_table"]) for r in confirm_result["runs"]] + [read_samples_table(baselines_table)]
    df = pd.concat(tables, ignore_index=True)
    ids = {(arm, trial): frozenset(g["sample_id"]) for (arm, trial), g in df.groupby(["arm", "trial_id"])}
    reference = next(iter(ids.values()))
    mismatched = [f"{arm} ({trial})" for (arm, trial), s in ids.items() if s != reference]
    if mismatched:
        raise StudyError(f"test tables do not share the same sample ids: {', '.join(mismatched)} differ from the first "
                         "run; the study's evaluation extent (data.eval_max_window/offset) was not the same for all runs")
    if (df["split"] != "test").any():
        raise StudyError(f"test tables hold rows of split {sorted(set(df['split']) - {'test'})}; expected only 'test'")
    check_samples_table(df, str(paths.test_table))
    with atomic_path(paths.test_table) as tmp:
        df.to_parquet(tmp, index=False)
    return paths.test_table


# ---------------------------------------------------------------------------------------------
# Summary and overhead
# ---------------------------------------------------------------------------------------------

def overhead(stages: dict[str, dict[str, Any]], trial_seconds: float) -> dict[str, Any]:
    wall = sum(float(s["wall_s"]) for s in stages.values())
    capacity = sum(float(s["wall_s"]) * int(s.get("slots") or 1) for s in stages.values())
    return {
        "wall_time_s": wall,
        "trial_time_s": trial_seconds,
        "capacity_s": capacity,
        "overhead_fraction": (1.0 - trial_seconds / capacity) if capacity > 0 else None,
        "definition": "1 - summed trial time / sum over stages of (stage wall time x trials that could run at once)",
    }


def write_summary(paths: StudyPaths, study: ValidatedStudy, clock: StageClock, arm_results: dict[str, Any],
                  confirm_result: dict[str, Any] | None, baselines_table: Path | None,
                  test_table: Path | None, *, report_dir: Path | None = None,
                  extra_work_s: float = 0.0) -> dict[str, Any]:
    """extra_work_s: slot time of work that is not a trial (the baselines task)."""
    tune_trials = [t for r in arm_results.values() for t in r["trials"]]
    confirm_runs = confirm_result["runs"] if confirm_result else []
    all_trials = tune_trials + confirm_runs
    trial_seconds = sum(t["trial_seconds"] for t in all_trials) + extra_work_s
    summary = {
        "study": study.config.name,
        "folder": str(paths.root.resolve()),
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "complete": test_table is not None,
        "config": study.config.to_dict(),
        "epochs_per_trial": study.epochs,
        "design": study.config.arms.design,
        "base_arm": next((a.key for a in study.arms if a.is_base), None),
        "arms": [{"key": a.key, "slug": a.slug, "window": a.window, "temporal_offset": a.temporal_offset,
                  # every factor's value, and the factors in which it differs from the base arm
                  "factors": a.factors, "changes": list(a.changes),
                  "experiment": str(paths.trials_dir),
                  "training_config": str(paths.arms_dir / f"{a.slug}.yaml"),
                  "optuna_study": arm_results.get(a.key, {}).get("optuna_study"),
                  "best_trial": arm_results.get(a.key, {}).get("best_trial"),
                  "best_val_psnr": arm_results.get(a.key, {}).get("best_val_psnr"),
                  "best_params": arm_results.get(a.key, {}).get("best_params")} for a in study.arms],
        "trials": [{k: t[k] for k in ("trial_id", "arm", "status", "epochs", "best_val_psnr", "final_val_psnr",
                                      "params", "attempts", "trial_seconds", "error", "path")} for t in tune_trials],
        "failed_trials": sum(t["status"] == "ERROR" for t in all_trials),
        "restarted_trials": sum(t["attempts"] > 1 for t in all_trials),
        "confirm": [{k: r.get(k) for k in ("trial_id", "arm", "seed", "status", "best_val_psnr", "attempts",
                                           "trial_seconds", "test_table", "path")} for r in confirm_runs],
        "baselines": str(baselines_table) if baselines_table else None,
        "test_table": str(test_table) if test_table else None,
        # The report's test family and what the design allows (lift.report reads both).
        "family": study.config.report.family().to_dict(),
        # (not "design": that key is the arms' design above, which a second "design" would overwrite)
        "design_check": study.design.to_dict() if study.design else None,
        "trials_per_arm": trials_per_arm(study.config),
        "optuna": {"storage": f"sqlite:///{paths.optuna_db.resolve()}",
                   "studies": [optuna_study_name(study.config.name, a.key) for a in study.arms]},
        "stage_timings": clock.stages(),
        "driver_sessions": clock.state.get("sessions", 1),
        "overhead": overhead(clock.stages(), trial_seconds),
        "report": {"dir": str(report_dir) if report_dir else None,
                   "command": f"python -m lift.report {paths.root} --out {report_dir or 'reports/' + paths.root.name}"},
    }
    write_json(paths.summary, summary)
    return summary


# ---------------------------------------------------------------------------------------------
# The whole study
# ---------------------------------------------------------------------------------------------

@dataclass
class StudyOutcome:
    paths: StudyPaths
    summary: dict[str, Any]
    arm_results: dict[str, Any] = field(default_factory=dict)


def run_study(cfg: StudyConfig, out: str | Path, *, resume: bool = False, callbacks: list[Any] | None = None,
              verbose: int = 1, report_dir: Path | None = None, log: Any = print,
              validated: ValidatedStudy | None = None, allow_underpowered: bool = False) -> StudyOutcome:
    """Validate, then tune every arm, confirm, evaluate the baselines and write the summary.

    Ray must already be initialised (lift.tune.ray_setup.connect). Raises StudyError before any
    trial starts if anything is invalid (or another process drives the folder), StudyInterrupted
    if a stage ended unfinished. `validated`: the result of validate_study(cfg) when the caller
    already ran it. The folder is locked while this runs (lift.tune.study_folder.hold_folder).
    """
    if not ray.is_initialized():
        raise StudyError("Ray is not initialised: call lift.tune.ray_setup.connect() first")
    t_validate = time.perf_counter()
    paths = StudyPaths(Path(out).expanduser().resolve())  # pyarrow (Tune storage) needs absolute paths
    reuse = validated is not None and validated.config is cfg
    study = validated if reuse else validate_study(cfg, allow_underpowered=allow_underpowered)
    study.capacity = check_cluster(cfg)
    # Validation touched no file: the folder is created (and locked) only for a study that can run.
    with hold_folder(paths):
        study.config = prepare_folder(paths, cfg, resume=resume)
        clock = StageClock(paths)
        clock.add("validate", time.perf_counter() - t_validate + (study.seconds if reuse else 0.0), slots=1)
        return _drive(study, paths, clock, callbacks=callbacks, verbose=verbose, report_dir=report_dir, log=log)


def _drive(study: ValidatedStudy, paths: StudyPaths, clock: StageClock, *, callbacks: list[Any] | None,
           verbose: int, report_dir: Path | None, log: Any) -> StudyOutcome:
    """run_study's stages, in the folder this process holds."""
    cfg, capacity = study.config, study.capacity
    budget = trials_per_arm(cfg)
    if study.design is not None:
        log(study.design.describe())
    log(f"study {cfg.name}: {len(study.arms)} arms ({', '.join(a.key for a in study.arms)}), "
        f"tuning trials {', '.join(f'{k}: {v}' for k, v in budget.items())}, {study.epochs} epochs, "
        f"{cfg.confirm.seeds} confirm seeds; "
        f"{capacity.slots} trial slots ({cfg.resources.cpus_per_trial:g} CPU, {cfg.resources.gpus_per_trial:g} GPU each)")

    pending_baselines = start_baselines(paths, study)
    done = (paths.trials_dir / TRIALS_RESULT).is_file()
    n_trials = sum(budget.values()) + len(study.arms) * cfg.confirm.seeds
    # Trials that can run at once: the cluster's slots, bounded by the per-arm concurrency limits
    # while tuning (confirm runs are not limited).
    slots = max(1, min(capacity.slots, n_trials))
    log(f"[trials] {n_trials} trials ({sum(budget.values())} tuning + {len(study.arms)} arms x "
        f"{cfg.confirm.seeds} confirm): {'done, skipped' if done else 'running'} ({paths.trials_dir})")
    t0 = time.perf_counter()
    try:
        arm_results, confirm_result = run_trials(paths, study, callbacks=callbacks, verbose=verbose)
    finally:
        if not done:
            clock.add("trials", time.perf_counter() - t0, slots=slots)
    for r in arm_results.values():
        log(f"[tune] arm {r['arm']}: best trial {r['best_trial']} val_psnr {r['best_val_psnr']:.3f} "
            f"params {r['best_params']}")

    t0 = time.perf_counter()
    baselines_table, baselines_s = finish_baselines(paths, pending_baselines)
    clock.add("baselines", time.perf_counter() - t0, slots=1)
    t0 = time.perf_counter()
    test_table = combine_test_tables(paths, confirm_result, baselines_table)
    clock.add("summary", time.perf_counter() - t0, slots=1)
    summary = write_summary(paths, study, clock, arm_results, confirm_result, baselines_table, test_table,
                            report_dir=report_dir, extra_work_s=baselines_s)
    return StudyOutcome(paths, summary, arm_results)


def format_overhead(summary: dict[str, Any]) -> str:
    o = summary["overhead"]
    frac = o["overhead_fraction"]
    return (f"overhead: wall time {o['wall_time_s']:.1f} s, summed trial time {o['trial_time_s']:.1f} s, "
            f"capacity {o['capacity_s']:.1f} slot-s, scheduling overhead "
            f"{'n/a' if frac is None else f'{100 * frac:.1f}%'}")


__all__ = [
    "StudyInterrupted", "StudyPaths", "ValidatedStudy", "StudyOutcome", "validate_study", "validate_data",
    "check_cluster", "check_design", "prepare_folder", "run_trials", "start_baselines", "finish_baselines",
    "combine_test_tables", "write_summary",
    "run_study", "format_overhead", "overhead", "trial_dirname",
]
