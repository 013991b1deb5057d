"""The context-ablation study on Ray Tune + Optuna, as importable stages.

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
   :func:`lift.tune.study_config.trials_per_arm`) from its own seeded TPE ``OptunaSearch`` (sampler seed = study
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

    study.yaml                the resolved study config (a resume must match it)
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
import json
import math
import os
import shutil
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import torch
from ray import tune

from lift.atomic import atomic_path, atomic_write_text
from lift.config import ConfigError, Config, config_from_dict, dict_differences, save_config
from lift.report import decision
from lift.tune.ledger import LEDGER_DIR, TrialLedger, params_of, trial_identity
from lift.tune.ray_setup import Capacity, check_trial_resources
from lift.tune.search import (
    ArmSearcher,
    PerArmScheduler,
    choose_best,
    drop_optuna_study,
    make_asha,
    make_searcher,
    optuna_study_name,
    sqlite_storage,
)
from lift.tune.study_config import (
    Arm,
    StudyConfig,
    StudyError,
    arm_train_config,
    arms_of,
    confirm_seeds,
    study_from_dict,
    trials_per_arm,
    study_to_yaml,
    validate_study_config,
)
from lift.tune.trainable import TIMING_FILE, lift_trainable

TRIALS_RESULT = "trials_result.json"
SUMMARY = "study_summary.json"
STATE = "state.json"
TEST_TABLE = "test_samples.parquet"
SAMPLES = "samples.parquet"

# Tune snapshots its experiment state at least this often (seconds); the checkpoint-driven
# snapshots (num_to_keep=1) cover every epoch, this covers status changes between them.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
# Forced snapshots after each epoch are intended here; do not warn about them.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


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



def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")


def _jsonable(value: Any) -> Any:
    """JSON without NaN/inf (strict parsers reject them): non-finite floats become strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# Validation (everything before any trial starts)
# ---------------------------------------------------------------------------------------------

@dataclass
class Design:
    """What the report can conclude, known before any trial: STATISTICS.md's "cannot reject by design"."""
    sources: dict[str, list[str]]  # split -> its independent sources (cluster ids)
    n_test_clusters: int
    seeds: int
    min_achievable_p: float
    clusters_needed: int
    alpha: float
    procedure: str
    underpowered: list[str]  # why no verdict is possible (empty: a verdict is possible)

    def describe(self) -> str:
        n_all = len({c for v in self.sources.values() for c in v})
        return (f"design: {self.n_test_clusters} independent source(s) in the test split ({n_all} in all), "
                f"{self.seeds} confirm seed(s) per arm; smallest achievable p {self.min_achievable_p:.3g} at "
                f"alpha {self.alpha:g} ({self.procedure}); {self.clusters_needed} test sources and "
                f"{decision.MIN_SEEDS} seeds are needed for a verdict")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ValidatedStudy:
    config: StudyConfig
    arms: list[Arm]
    train_configs: dict[str, Config]  # arm key -> config before search values
    epochs: int
    capacity: Capacity | None = None
    seconds: float = 0.0  # time validate_study took
    design: Design | None = None


def check_design(cfg: StudyConfig, sources: dict[str, list[str]], *, allow_underpowered: bool = False) -> Design:
    """Can the report reject H0 at all with these test sources, seeds and family? StudyError if not,
    naming the sources and what is needed, unless ``allow_underpowered`` (the verdict will then say why)."""
    family = cfg.report.family()
    n = len(sources.get("test", []))
    floor = decision.min_achievable_p(n, family.procedure, len(family.endpoints))
    need = decision.clusters_needed(family.alpha, family.procedure, len(family.endpoints))
    why = []
    if floor >= family.alpha:
        everything = sorted({c for v in sources.values() for c in v})
        why.append(f"cannot reject by design: the test split has {n} independent source(s) "
                   f"({', '.join(sources.get('test', [])) or 'none'}; {len(everything)} in all: {', '.join(everything)}), "
                   f"so the smallest achievable p is {floor:.3g}, not below alpha={family.alpha:g} "
                   f"({family.procedure} over {', '.join(family.endpoints)}); {need} test sources are needed")
    if cfg.confirm.seeds < decision.MIN_SEEDS:
        why.append(f"confirm.seeds={cfg.confirm.seeds}: a verdict needs at least {decision.MIN_SEEDS} seeds per arm "
                   f"(the report will say 'inconclusive')")
    design = Design(sources, n, cfg.confirm.seeds, floor, need, family.alpha, family.procedure, why)
    if why and not allow_underpowered:
        fix = "use more data" if floor >= family.alpha else f"--set confirm.seeds={decision.MIN_SEEDS}"
        raise StudyError("; ".join(why) + f". Either {fix}, or pass --allow-underpowered to run it as a demonstration "
                         "whose report cannot decide H0")
    return design


def validate_study(cfg: StudyConfig, *, check_data: bool = True, allow_underpowered: bool = False) -> ValidatedStudy:
    """Configs, models, data and design of every arm; StudyError naming the problem otherwise."""
    t0 = time.perf_counter()
    validate_study_config(cfg)
    from lift.train import build_components, check_registries

    arms = arms_of(cfg)
    configs: dict[str, Config] = {}
    for arm in arms:
        tcfg = arm_train_config(cfg, arm)
        try:
            check_registries(tcfg)
            build_components(tcfg, torch.device("cpu"))
        except (ConfigError, ValueError) as err:
            raise StudyError(f"arm {arm.key}: {err}") from None
        configs[arm.key] = tcfg
    epochs = {c.train.epochs for c in configs.values()}
    assert len(epochs) == 1, epochs
    design = None
    if check_data:
        sources = validate_data(cfg, arms, configs)
        design = check_design(cfg, sources, allow_underpowered=allow_underpowered)
    return ValidatedStudy(cfg, arms, configs, epochs.pop(), seconds=time.perf_counter() - t0, design=design)


def validate_data(cfg: StudyConfig, arms: list[Arm], configs: dict[str, Config]) -> dict[str, list[str]]:
    """The arm with the longest span must fit the training sequences, and the study's largest
    window/offset the evaluation ones; then every arm fits (a shorter span fits wherever a longer
    one does). Returns each split's independent sources (cluster ids)."""
    from lift.data import build_dataset
    from lift.data.window import WindowError

    widest = max(arms, key=lambda a: (a.window, a.temporal_offset))
    dcfg = configs[widest.key].data
    sources: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        try:
            ds = build_dataset(dcfg, split, train=split == "train", seed=cfg.seed)
        except (WindowError, ValueError, FileNotFoundError, OSError) as err:
            raise StudyError(
                f"arm {widest.key} (the study's widest, window {widest.window} with temporal offset "
                f"{widest.temporal_offset}; evaluation fixed for window {dcfg.eval_max_window}, offset "
                f"{dcfg.eval_max_offset}) cannot use the {split} split of dataset {dcfg.dataset!r} "
                f"(data_root {dcfg.data_root!r}): {err}") from None
        if len(ds) == 0:
            raise StudyError(f"the {split} split of dataset {dcfg.dataset!r} (data_root {dcfg.data_root!r}) has no "
                             f"samples for arm {widest.key}")
        sources[split] = sorted({seq.cluster_id for seq in ds.sequences})
    return sources


def check_cluster(cfg: StudyConfig) -> Capacity:
    return check_trial_resources(cfg.resources.cpus_per_trial, cfg.resources.gpus_per_trial)


# ---------------------------------------------------------------------------------------------
# Study folder
# ---------------------------------------------------------------------------------------------

def prepare_folder(paths: StudyPaths, cfg: StudyConfig, *, resume: bool) -> StudyConfig:
    """Create the study folder, or check that a resumed one was made by the same study config."""
    if paths.study_yaml.is_file():
        if not resume:
            raise StudyError(f"--out {paths.root}: a study already lives there; pass --resume to continue it "
                             "or choose another --out")
        import yaml

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
        self.state = _read_json(self.path) if self.path.is_file() else {"stages": {}, "sessions": 0}
        self.state["sessions"] = int(self.state.get("sessions", 0)) + 1
        self._save()

    def _save(self) -> None:
        _write_json(self.path, self.state)

    def add(self, stage: str, seconds: float, *, slots: int | None = None) -> None:
        entry = self.state["stages"].setdefault(stage, {"wall_s": 0.0, "slots": slots})
        entry["wall_s"] = float(entry["wall_s"]) + float(seconds)
        if slots is not None:
            entry["slots"] = slots
        self._save()

    def stages(self) -> dict[str, dict[str, Any]]:
        return self.state["stages"]


# ---------------------------------------------------------------------------------------------
# Ray Tune plumbing shared by the stages
# ---------------------------------------------------------------------------------------------

def trial_dirname(trial: Any) -> str:
    """`<arm slug>_<trial id>` in the tuning stage, `<arm slug>_seed<seed>_<trial id>` in confirm."""
    study = trial.config.get("study", {})
    if study.get("stage") == "confirm":
        return f"{study.get('slug', 'arm')}_seed{study.get('seed')}_{trial.trial_id}"
    return f"{study.get('slug', 'arm')}_{trial.trial_id}"


def _trainable(cfg: StudyConfig, arm_configs: dict[str, dict[str, Any]], ledger: TrialLedger) -> Any:
    """The trainable with the arms' training configs in Ray's object store, the ledger it checks,
    and one trial's resources."""
    return tune.with_resources(tune.with_parameters(lift_trainable, arm_configs=arm_configs,
                                                    ledger_dir=str(ledger.folder)),
                               {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial})


def _run_config(name: str, storage: Path, cfg: StudyConfig, callbacks: list[Any] | None, verbose: int) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=str(storage.resolve()),
        # One checkpoint per trial; with num_to_keep=1 Tune snapshots the experiment after each.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        failure_config=tune.FailureConfig(max_failures=cfg.failure.max_failures),
        sync_config=tune.SyncConfig(sync_artifacts=True),
        callbacks=callbacks,
        verbose=verbose,
    )


def _timing_seconds(trial_path: Path) -> tuple[float, int]:
    path = trial_path / TIMING_FILE
    if not path.is_file():
        return 0.0, 0
    records = _read_json(path)
    return float(sum(r.get("seconds", 0.0) for r in records)), len(records)


def _trial_record(result: Any, epochs: int, entry: dict[str, Any] | None = None) -> dict[str, Any]:
    """One trial as the summary shows it, from Tune's result; for a trial in the ledger its
    status and final metrics come from the ledger (the snapshot may lag a crash)."""
    if entry is not None:
        return _ledger_record(entry, epochs, result.metrics_dataframe)
    m = result.metrics or {}
    return _record(m.get("trial_id") or Path(result.path).name, result.config or {}, m, result.error,
                   Path(result.path), result.metrics_dataframe, epochs)


def _ledger_record(entry: dict[str, Any], epochs: int, df: pd.DataFrame | None = None) -> dict[str, Any]:
    """A finished trial from its ledger entry (also one the restored Tune experiment never saw)."""
    path = Path(entry["path"])
    if df is None and (path / "progress.csv").is_file():
        df = pd.read_csv(path / "progress.csv")
    config = {**entry["params"], "study": entry["study"]}
    return _record(entry["trial_id"], config, entry["result"], None, path, df, epochs)


def _record(trial_id: str, config: dict[str, Any], metrics: dict[str, Any], error: BaseException | None,
            path: Path, df: pd.DataFrame | None, epochs: int) -> dict[str, Any]:
    seconds, attempts = _timing_seconds(path)
    iters = int(metrics.get("training_iteration", 0) or 0)
    if error is not None:
        status = "ERROR"
    elif iters >= epochs:
        status = "COMPLETED"
    else:
        status = "STOPPED_EARLY"  # ASHA
    history = []
    if df is not None and "val_psnr" in df.columns:
        # One value per epoch up to the final result (progress.csv may lag a crash).
        history = [float(v) for v in df["val_psnr"].tolist()][:iters]
    final = metrics.get("val_psnr")
    if isinstance(final, (int, float)) and len(history) < iters:
        history.append(float(final))
    return {
        **trial_identity(trial_id, config),
        "status": status,
        "epochs": iters,
        "final_val_psnr": history[-1] if history else None,
        "best_val_psnr": max(history) if history else None,
        "val_psnr_history": history,
        "params": params_of(config),
        "error": None if error is None else f"{type(error).__name__}: {error}"[:2000],
        "trial_seconds": seconds,
        "attempts": attempts,
        "path": str(path),
    }


# ---------------------------------------------------------------------------------------------
# Stages 2 and 3: tuning and confirm runs, in one Ray experiment
# ---------------------------------------------------------------------------------------------

def run_trials(paths: StudyPaths, study: ValidatedStudy, *, callbacks: list[Any] | None = None,
               verbose: int = 1) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run (or resume, or read back) every trial of the study: (per-arm tuning results, confirm
    result). Raises StudyInterrupted if the run stopped with trials left, StudyError if an arm
    has no full-budget trial or a confirm run failed."""
    cfg = study.config
    marker = paths.trials_dir / TRIALS_RESULT
    if marker.is_file():
        done = _read_json(marker)
        return done["arms"], done["confirm"]
    seeds = confirm_seeds(cfg)
    budget = trials_per_arm(cfg)
    storage = sqlite_storage(paths.optuna_db)
    ledger = TrialLedger(paths.ledger)
    trainable = _trainable(cfg, {arm.key: study.train_configs[arm.key].to_dict() for arm in study.arms}, ledger)
    searcher: ArmSearcher | None = None
    if tune.Tuner.can_restore(str(paths.trials_dir)):
        tuner = tune.Tuner.restore(str(paths.trials_dir), trainable, resume_unfinished=True, restart_errored=True)
        _set_session_options(tuner, callbacks, verbose)
    else:
        # No Tune state: entries of a run that stopped before its first snapshot go the way of
        # its Optuna studies below (the trials start afresh).
        if paths.ledger.is_dir():
            shutil.rmtree(paths.ledger)
        per_arm: dict[str, tuple[Any, dict[str, Any]]] = {}
        schedulers = {}
        for arm in study.arms:
            name = optuna_study_name(cfg.name, arm.key)
            # No Tune state yet: anything in optuna.db under this name is an orphan of a run that
            # stopped before its first snapshot.
            drop_optuna_study(storage, name)
            save_config(study.train_configs[arm.key], paths.arms_dir / f"{arm.slug}.yaml")
            arm_searcher = make_searcher(storage=storage, study_name=name, arm_key=arm.key, space=cfg.search.space,
                                         seed=cfg.seed + arm.index, max_t=study.epochs,
                                         max_concurrent=cfg.search.max_concurrent,
                                         num_samples=budget[arm.key])
            per_arm[arm.key] = (arm_searcher, {"arm": arm.key, "slug": arm.slug, "seed": cfg.seed})
            schedulers[arm.key] = make_asha(max_t=study.epochs, grace_period=cfg.asha.grace_period,
                                            reduction_factor=cfg.asha.reduction_factor)
        searcher = ArmSearcher(per_arm, budget, max_t=study.epochs, confirm_seeds=seeds, ledger=ledger)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=PerArmScheduler(schedulers, ledger),
                                        num_samples=searcher.total_trials, reuse_actors=True,
                                        trial_dirname_creator=trial_dirname),
            run_config=_run_config(paths.trials_dir.name, paths.root, cfg, callbacks, verbose),
        )
    grid = tuner.fit()
    finished = grid.num_terminated + grid.num_errors
    if finished < len(grid):
        raise StudyInterrupted(f"{finished} of {len(grid)} started trials finished before the run stopped; run the "
                               f"study again with --resume to continue ({paths.trials_dir})")
    recorded = ledger.entries()
    by_folder = {Path(e["path"]).name: e for e in recorded.values()}
    records = [_trial_record(r, study.epochs, by_folder.get(Path(r.path).name)) for r in grid]
    # Finished trials the restored experiment never saw (its snapshot lagged the crash).
    seen = {r["trial_id"] for r in records}
    records += [_ledger_record(e, study.epochs) for tid, e in sorted(recorded.items()) if tid not in seen]
    _remove_unrecorded_trial_dirs(paths, {Path(r["path"]).name for r in records})
    arm_results = _arm_results(paths, study, records)
    confirm_result = _confirm_result(paths, study, records, arm_results, seeds)
    _write_json(marker, {"experiment": str(paths.trials_dir), "arms": arm_results, "confirm": confirm_result})
    return arm_results, confirm_result


def _remove_unrecorded_trial_dirs(paths: StudyPaths, recorded: set[str]) -> None:
    """A trial started after Tune's last snapshot by a driver that then died is not part of the
    restored experiment (its Optuna trial went to a new Tune trial); its partial folder would
    otherwise look like a trial of the study to anyone reading the folder (lift.report globs it)."""
    for path in paths.trials_dir.iterdir():
        if path.is_dir() and (path / TIMING_FILE).is_file() and path.name not in recorded:
            shutil.rmtree(path)


def _set_session_options(tuner: tune.Tuner, callbacks: list[Any] | None, verbose: int) -> None:
    """`Tuner.restore` brings back the RunConfig pickled by the first session; this session's
    callbacks and console verbosity belong to this session. Ray has no public setter, so the
    restored run config is updated in place."""
    run_config = getattr(getattr(tuner, "_local_tuner", None), "get_run_config", lambda: None)()
    if run_config is None:
        if callbacks:
            raise StudyError("this Ray version does not let a resumed study take new Tune callbacks")
        return
    run_config.callbacks = list(callbacks or [])
    run_config.verbose = verbose


def _interrupted(what: str, paths: StudyPaths) -> StudyInterrupted:
    return StudyInterrupted(f"{what}; run the study again with --resume to continue ({paths.trials_dir})")


def _arm_results(paths: StudyPaths, study: ValidatedStudy, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cfg = study.config
    results = {}
    for arm in study.arms:
        mine = sorted((t for t in records if t["arm"] == arm.key and t["stage"] == "tune"),
                      key=lambda t: t["trial_id"])
        if len(mine) < trials_per_arm(cfg)[arm.key]:
            raise _interrupted(f"arm {arm.key}: {len(mine)} of its {trials_per_arm(cfg)[arm.key]} tuning trials finished",
                               paths)
        best = choose_best([(t["final_val_psnr"], t["trial_id"], t["params"]) for t in mine
                            if t["status"] == "COMPLETED" and t["final_val_psnr"] is not None])
        if best is None:
            errors = [f"{t['trial_id']}: {t['error']}" for t in mine if t["error"]]
            raise StudyError(f"arm {arm.key}: no tuning trial trained for the full {study.epochs} epochs "
                             f"({len(errors)} failed: {'; '.join(errors[:3]) or 'none'}), so it has no configuration "
                             f"to confirm; see {paths.trials_dir}")
        value, trial_id, params = best
        results[arm.key] = {"arm": arm.key, "slug": arm.slug, "window": arm.window,
                            "temporal_offset": arm.temporal_offset, "factors": arm.factors,
                            "changes": list(arm.changes),
                            "optuna_study": optuna_study_name(cfg.name, arm.key), "epochs": study.epochs,
                            "best_trial": trial_id, "best_params": params, "best_val_psnr": value, "trials": mine}
    return results


def _confirm_result(paths: StudyPaths, study: ValidatedStudy, records: list[dict[str, Any]],
                    arm_results: dict[str, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    runs = sorted((t for t in records if t["stage"] == "confirm"), key=lambda t: (t["arm"], t["seed"]))
    for arm in study.arms:
        mine = [r for r in runs if r["arm"] == arm.key]
        if sorted(r["seed"] for r in mine) != seeds:
            raise _interrupted(f"arm {arm.key}: {len(mine)} of its {len(seeds)} confirm runs finished", paths)
        best = arm_results[arm.key]
        for r in mine:
            if r["params"] != best["best_params"] or r["tuned_trial"] != best["best_trial"]:
                raise StudyError(f"confirm run {r['trial_id']} of arm {arm.key} trained the configuration of trial "
                                 f"{r['tuned_trial']}, but the arm's best trial is {best['best_trial']}")
        save_config(arm_train_config(study.config, arm, best["best_params"]), paths.arms_dir / f"{arm.slug}_best.yaml")
    failed = [r for r in runs if r["status"] == "ERROR"]
    if failed:
        raise StudyError("confirm runs failed: " + "; ".join(f"arm {r['arm']} seed {r['seed']}: {r['error']}"
                                                            for r in failed))
    for r in runs:
        table = Path(r["path"]) / SAMPLES
        if not table.is_file():
            raise StudyError(f"confirm run {r['trial_id']} (arm {r['arm']}, seed {r['seed']}) left no test table at "
                             f"{table}; if trials ran on other nodes, --out must be on storage every node shares")
        r["test_table"] = str(table)
    return {"seeds": seeds, "best_params": {k: v["best_params"] for k, v in arm_results.items()}, "runs": runs}


# ---------------------------------------------------------------------------------------------
# Stage 4: baselines
# ---------------------------------------------------------------------------------------------

def _evaluate_baselines(cfg_dict: dict[str, Any], seed: int) -> tuple[pd.DataFrame, float]:
    """Body of the baselines task (runs on a worker with one trial's resources)."""
    from lift.data import build_dataset
    from lift.evaluate import evaluate_baselines
    from lift.train import make_loader, resolve_device

    t0 = time.perf_counter()
    cfg = config_from_dict(cfg_dict)
    device = resolve_device(cfg.train.device)
    dataset = build_dataset(cfg.data, "test", train=False, seed=seed)
    loader = make_loader(dataset, cfg, train=False, device=device)
    df = evaluate_baselines(loader, eval_cfg=cfg.eval, split="test", device=device, seed=seed,
                            trial_id="baseline", progress=False)
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
    from lift.evaluate import write_samples_table

    out = paths.baselines_dir / SAMPLES
    if pending is None:
        state = _read_json(paths.baselines_dir / "timing.json") if (paths.baselines_dir / "timing.json").is_file() else {}
        return out, float(state.get("seconds", 0.0))
    df, seconds = ray.get(pending)
    _write_json(paths.baselines_dir / "timing.json", {"seconds": seconds})
    return write_samples_table(df, paths.baselines_dir), seconds


def combine_test_tables(paths: StudyPaths, confirm_result: dict[str, Any], baselines_table: Path) -> Path:
    """All test tables in one file, after checking that every run covers the same sample ids."""
    from lift.evaluate import check_samples_table, read_samples_table

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
    _write_json(paths.summary, summary)
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
    trial starts if anything is invalid, StudyInterrupted if a stage ended unfinished.
    `validated`: the result of validate_study(cfg) when the caller already ran it.
    """
    if not ray.is_initialized():
        raise StudyError("Ray is not initialised: call lift.tune.ray_setup.connect() first")
    t_validate = time.perf_counter()
    paths = StudyPaths(Path(out).expanduser().resolve())  # pyarrow (Tune storage) needs absolute paths
    reuse = validated is not None and validated.config is cfg
    study = validated if reuse else validate_study(cfg, allow_underpowered=allow_underpowered)
    capacity = check_cluster(cfg)
    cfg = prepare_folder(paths, cfg, resume=resume)
    study.config, study.capacity = cfg, capacity
    clock = StageClock(paths)
    clock.add("validate", time.perf_counter() - t_validate + (study.seconds if reuse else 0.0), slots=1)
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
    "check_cluster", "prepare_folder", "run_trials", "start_baselines", "finish_baselines",
    "combine_test_tables", "write_summary",
    "run_study", "format_overhead", "overhead", "trial_dirname",
]
