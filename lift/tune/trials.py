"""Stages 2 and 3 of the study, tuning and confirm runs, as one Ray Tune experiment (protocol:
:mod:`lift.tune.study`; the search and schedulers: :mod:`lift.tune.search`).

:func:`run_trials` starts the experiment, or restores an interrupted one with
``Tuner.restore(resume_unfinished=True, restart_errored=True)``, or reads back its marker file;
then it turns Tune's results, and the ledger's finished trials a lagging snapshot never saw
(:mod:`lift.tune.ledger`), into one record per trial, each arm's best tuning trial and the confirm
runs.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune
from ray.tune import Callback

from lift.atomic import write_json
from lift.config import save_config
from lift.tune.ledger import TrialLedger, params_of, trial_identity
from lift.tune.search import (
    ArmSearcher,
    PerArmScheduler,
    StudySearchGenerator,
    choose_best,
    drop_optuna_study,
    make_asha,
    make_searcher,
    optuna_study_name,
    sqlite_storage,
)
from lift.tune.study_config import StudyConfig, StudyError, arm_train_config, confirm_seeds, trials_per_arm
from lift.tune.study_folder import SAMPLES, TRIALS_RESULT, StudyInterrupted, StudyPaths, interrupted, read_json
from lift.tune.study_validation import ValidatedStudy
from lift.tune.trainable import TIMING_FILE, lift_trainable

# Tune snapshots its experiment state at least this often (seconds); the checkpoint-driven
# snapshots (num_to_keep=1) cover every epoch, this covers status changes between them.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
# Forced snapshots after each epoch are intended here; do not warn about them.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


class SessionCallbacks(Callback):
    """The Tune callbacks of the driver session that runs the experiment, also after a resume.

    ``Tuner.restore`` brings back the RunConfig pickled by the session that started the
    experiment, callbacks included, and Ray has no public way to replace them; yet a resumed
    study's callbacks (its console, a test's fault injection) belong to the session that resumes
    it. The RunConfig therefore holds this forwarder: it calls the callbacks that :meth:`use`
    installed in this process, or, where none were installed (a driver without this module's
    state, e.g. a Tuner run remotely through Ray Client), the ones it was built with.

    A resumed study keeps its first session's ``RunConfig.verbose`` (Ray's own progress output)
    for the same reason; the study's console is a callback and follows the session.
    """

    IS_CALLBACK_CONTAINER = True  # Ray then checks, when the class is made, that every hook is forwarded
    _session: list[Callback] | None = None  # per process, never pickled (a class attribute)

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self._own = list(callbacks or [])

    @classmethod
    def use(cls, callbacks: list[Callback] | None) -> None:
        cls._session = list(callbacks or [])

    def _forward(self, hook: str, info: dict[str, Any]) -> None:
        for callback in self._own if self._session is None else self._session:
            getattr(callback, hook)(**info)

    def setup(self, **info: Any) -> None:
        self._forward("setup", info)

    def on_step_begin(self, **info: Any) -> None:
        self._forward("on_step_begin", info)

    def on_step_end(self, **info: Any) -> None:
        self._forward("on_step_end", info)

    def on_trial_start(self, **info: Any) -> None:
        self._forward("on_trial_start", info)

    def on_trial_restore(self, **info: Any) -> None:
        self._forward("on_trial_restore", info)

    def on_trial_save(self, **info: Any) -> None:
        self._forward("on_trial_save", info)

    def on_trial_result(self, **info: Any) -> None:
        self._forward("on_trial_result", info)

    def on_trial_complete(self, **info: Any) -> None:
        self._forward("on_trial_complete", info)

    def on_trial_recover(self, **info: Any) -> None:
        self._forward("on_trial_recover", info)

    def on_trial_error(self, **info: Any) -> None:
        self._forward("on_trial_error", info)

    def on_checkpoint(self, **info: Any) -> None:
        self._forward("on_checkpoint", info)

    def on_experiment_end(self, **info: Any) -> None:
        self._forward("on_experiment_end", info)


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


def _run_config(name: str, storage: Path, cfg: StudyConfig, callbacks: list[Any] | None,
                verbose: int) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=str(storage.resolve()),
        # One checkpoint per trial; with num_to_keep=1 Tune snapshots the experiment after each.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        failure_config=tune.FailureConfig(max_failures=cfg.failure.max_failures),
        sync_config=tune.SyncConfig(sync_artifacts=True),
        callbacks=[SessionCallbacks(callbacks)],
        verbose=verbose,
    )


def _timing_seconds(trial_path: Path) -> tuple[float, int]:
    path = trial_path / TIMING_FILE
    if not path.is_file():
        return 0.0, 0
    records = read_json(path)
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


def run_trials(paths: StudyPaths, study: ValidatedStudy, *, callbacks: list[Any] | None = None,
               verbose: int = 1) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run (or resume, or read back) every trial of the study: (per-arm tuning results, confirm
    result). Raises StudyInterrupted if the run stopped with trials left, StudyError if an arm
    has no full-budget trial or a confirm run failed."""
    cfg = study.config
    marker = paths.trials_dir / TRIALS_RESULT
    if marker.is_file():
        done = read_json(marker)
        return _rebased(paths, done["arms"], done["confirm"])
    ledger = TrialLedger(paths.ledger)
    trainable = _trainable(cfg, {arm.key: study.train_configs[arm.key].to_dict() for arm in study.arms}, ledger)
    SessionCallbacks.use(callbacks)
    if tune.Tuner.can_restore(str(paths.trials_dir)):
        tuner = restore_tuner(paths, trainable)
    else:
        tuner = _new_tuner(paths, study, trainable, ledger, callbacks=callbacks, verbose=verbose)
    with ctrl_c_stops_tune() as ctrl_c:
        grid = tuner.fit()
    if ctrl_c.pressed:
        # Trials cut short by Ctrl-C look failed or unfinished to Tune: never report them as results.
        raise StudyInterrupted(f"Ctrl-C: the trials stopped; Tune saved the experiment in {paths.trials_dir}")
    finished = grid.num_terminated + grid.num_errors
    if finished < len(grid):
        raise StudyInterrupted(f"{finished} of {len(grid)} started trials finished before the run stopped; run the "
                               f"study again with --resume to continue ({paths.trials_dir})")
    records = _records(paths, study, grid, ledger)
    arm_results = _arm_results(paths, study, records)
    confirm_result = _confirm_result(paths, study, records, arm_results, confirm_seeds(cfg))
    write_json(marker, {"experiment": str(paths.trials_dir), "arms": arm_results, "confirm": confirm_result})
    return arm_results, confirm_result


@dataclass
class CtrlC:
    pressed: bool = False


@contextlib.contextmanager
def ctrl_c_stops_tune() -> Iterator[CtrlC]:
    """Around `Tuner.fit`: the first Ctrl-C is remembered and stops Tune gracefully (its SIGUSR1 stop,
    which saves the experiment), a second aborts at once.

    Tune's own SIGINT handler (disabled here with its documented TUNE_DISABLE_SIGINT_HANDLER) stops
    the same way but tells no one: `fit` returns as if the run had ended, and trials the signal cut
    short then read as failures.
    """
    state = CtrlC()
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield state
        return
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGUSR1)
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")

    def on_ctrl_c(signum: int, frame: Any) -> None:
        # SIGUSR1 is Tune's once its run has started; before, a Ctrl-C must abort at once.
        tune_listens = signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        first, state.pressed = not state.pressed, True
        if not (first and tune_listens):
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGUSR1)

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    signal.signal(signal.SIGINT, on_ctrl_c)
    # An earlier Tune run in this process leaves its SIGUSR1 handler behind, listening to nothing.
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        yield state
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGUSR1), previous):
            # None: a handler set outside Python, which Python cannot put back.
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env


def _rebased(paths: StudyPaths, arms: dict[str, dict[str, Any]],
             confirm: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The marker's records with their trial folders under the study folder as it is now (the
    marker names them by absolute path, and the folder may have been copied or moved since)."""
    for record in [t for arm in arms.values() for t in arm["trials"]] + confirm["runs"]:
        record["path"] = str(paths.trials_dir / Path(record["path"]).name)
        if "test_table" in record:
            record["test_table"] = str(Path(record["path"]) / SAMPLES)
    return arms, confirm


def restore_tuner(paths: StudyPaths, trainable: Any) -> tune.Tuner:
    """The interrupted experiment, as Tune pickled it. A snapshot written by another version of
    lift names classes this one does not have: say so instead of showing the unpickling error."""
    try:
        return tune.Tuner.restore(str(paths.trials_dir), trainable, resume_unfinished=True, restart_errored=True)
    except (AttributeError, ModuleNotFoundError, ImportError, pickle.UnpicklingError) as err:
        raise StudyError(f"{paths.trials_dir}: the interrupted Tune experiment was written by another version of "
                         f"lift and cannot be restored by this one ({type(err).__name__}: {err}); resume it with "
                         f"the version that started it, or start the study in a new --out folder") from err


def _new_tuner(paths: StudyPaths, study: ValidatedStudy, trainable: Any, ledger: TrialLedger, *,
               callbacks: list[Any] | None, verbose: int) -> tune.Tuner:
    """A fresh experiment: per arm its seeded TPE search behind its concurrency limit and its ASHA."""
    cfg = study.config
    budget = trials_per_arm(cfg)
    storage = sqlite_storage(paths.optuna_db)
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
                                     max_concurrent=cfg.search.max_concurrent, num_samples=budget[arm.key])
        per_arm[arm.key] = (arm_searcher, {"arm": arm.key, "slug": arm.slug, "seed": cfg.seed})
        schedulers[arm.key] = make_asha(max_t=study.epochs, grace_period=cfg.asha.grace_period,
                                        reduction_factor=cfg.asha.reduction_factor)
    searcher = ArmSearcher(per_arm, budget, max_t=study.epochs, confirm_seeds=confirm_seeds(cfg), ledger=ledger)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=StudySearchGenerator(searcher), scheduler=PerArmScheduler(schedulers, ledger),
                                    num_samples=searcher.total_trials, reuse_actors=True,
                                    trial_dirname_creator=trial_dirname),
        run_config=_run_config(paths.trials_dir.name, paths.root, cfg, callbacks, verbose),
    )


def _records(paths: StudyPaths, study: ValidatedStudy, grid: tune.ResultGrid,
             ledger: TrialLedger) -> list[dict[str, Any]]:
    """One record per finished trial: Tune's results, the ledger's outcome where it has one."""
    recorded = ledger.entries()
    by_folder = {Path(e["path"]).name: e for e in recorded.values()}
    records = [_trial_record(r, study.epochs, by_folder.get(Path(r.path).name)) for r in grid]
    # Finished trials the restored experiment never saw (its snapshot lagged the crash).
    seen = {r["trial_id"] for r in records}
    records += [_ledger_record(e, study.epochs) for tid, e in sorted(recorded.items()) if tid not in seen]
    _remove_unrecorded_trial_dirs(paths, {Path(r["path"]).name for r in records})
    return records


def _remove_unrecorded_trial_dirs(paths: StudyPaths, recorded: set[str]) -> None:
    """A trial started after Tune's last snapshot by a driver that then died is not part of the
    restored experiment (its Optuna trial went to a new Tune trial); its partial folder would
    otherwise look like a trial of the study to anyone reading the folder (lift.report globs it)."""
    for path in paths.trials_dir.iterdir():
        if path.is_dir() and (path / TIMING_FILE).is_file() and path.name not in recorded:
            shutil.rmtree(path)


def _arm_results(paths: StudyPaths, study: ValidatedStudy, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cfg = study.config
    results = {}
    for arm in study.arms:
        mine = sorted((t for t in records if t["arm"] == arm.key and t["stage"] == "tune"),
                      key=lambda t: t["trial_id"])
        if len(mine) < trials_per_arm(cfg)[arm.key]:
            raise interrupted(f"arm {arm.key}: {len(mine)} of its {trials_per_arm(cfg)[arm.key]} tuning trials finished",
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
            raise interrupted(f"arm {arm.key}: {len(mine)} of its {len(seeds)} confirm runs finished", paths)
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
