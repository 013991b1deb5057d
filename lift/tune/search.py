"""Optuna under Ray Tune: one persisted TPE study per arm, told the truth about ASHA stops.

A whole study (tuning and confirm runs of every arm) runs as **one** Tune experiment, so trial
slots do not idle at the end of an arm or stage and actors are reused throughout; each arm still
has its own search, budget, concurrency limit and early stopping:

- :class:`ArmSearcher` hands out tuning trials arm by arm (the arm with the fewest trials so far
  first), exactly ``num_samples`` per arm, each from that arm's own seeded TPE study
  (:class:`OptunaArmSearch`) behind a stock ``ConcurrencyLimiter``, and tags every config with its
  arm. When all tuning trials of an arm have ended, it queues that arm's confirm runs (best
  configuration x seeds); those run while other arms are still tuning.
- :class:`PerArmScheduler` routes each tuning trial to its arm's own stock ``ASHAScheduler``, so
  trials only compete with trials of the same arm; confirm runs are never stopped early.

Why not Ray's ``OptunaSearch``: it reports every epoch's ``val_psnr`` to the Optuna trial as an
intermediate value and, when Tune ends the trial, tells Optuna COMPLETE with the *last* value. A
trial that ASHA stopped after one epoch would enter TPE as a finished trial whose 1-epoch PSNR is
compared with the full-budget PSNR of the survivors: TPE would learn from values measured at
different budgets. Changing that (and resuming after a crash) needed its private attributes, so
:class:`OptunaArmSearch` is a Tune ``Searcher`` of its own over Optuna's public ask-and-tell API.

The choice made here: a trial that ended (without error) before the full budget ``max_t`` epochs
is told **PRUNED**, keeping its per-epoch intermediate values; only full-budget trials are
COMPLETE, with their final validation PSNR; errors are FAIL. Optuna's TPE already ranks PRUNED
trials below every COMPLETE one, ordered by how far they got and then by their last intermediate
value, which is exactly ASHA's verdict, and ``study.best_trial`` only considers full-budget trials.
The Optuna study (``optuna.db``) therefore reads the same way in Optuna's own tools: COMPLETE =
trained to the end, PRUNED = stopped by ASHA, FAIL = errored.

Each Optuna trial carries user attributes ``ray_trial_id`` and ``arm`` to map it to Tune's trial.

Tune pickles the searcher and the scheduler with the experiment. Pickled, they name no absolute
path a resume would trust: an Optuna search keeps its storage's URL only as a fallback and its
trials by number, and when unpickled in a process that drives a study folder
(:func:`lift.tune.study_folder.driven_folder`) every searcher and scheduler re-points its Optuna
storage and ledger at that folder, so a copied or moved study writes only into itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import math
import pickle

import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, SearchGenerator, Searcher

from lift.tune.ledger import TrialLedger, entry_for
from lift.tune.study_config import SearchParam
from lift.tune.study_folder import StudyPaths, driven_folder

METRIC = "val_psnr"
MODE = "max"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _step(result: dict) -> int:
    return int(result.get("training_iteration", 0))


class _PickledState:
    """save/restore of the whole object: Tune snapshots searcher and scheduler state with the
    experiment, and the per-arm searchers and schedulers travel inside it. Whenever one is
    unpickled in a process driving a study folder, :meth:`_relocate` re-points it there."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__getstate__(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__setstate__(pickle.load(fh))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        folder = driven_folder()
        if folder is not None:
            self._relocate(folder)

    def _relocate(self, folder: StudyPaths) -> None:
        """Point every path this object writes or reads at `folder` (the study being driven)."""


class _Relocatable(_PickledState):
    """A searcher or scheduler with a ledger, re-pointed at the driven folder's ledger."""

    _ledger: TrialLedger | None = None  # default for one pickled before the ledger existed

    def _relocate(self, folder: StudyPaths) -> None:
        if self._ledger is not None:
            self._ledger = TrialLedger(folder.ledger)


class OptunaArmSearch(_PickledState, Searcher):
    """One arm's seeded TPE study as a Tune searcher, through Optuna's ask-and-tell API only.

    A Tune trial id maps to the Optuna trial asked for it; its number travels in Tune's searcher
    snapshot (a handle, ``optuna.trial.Trial``, would pickle the storage's absolute URL), and the
    study and handles are opened again, on the driven folder's ``optuna.db``, when first needed.
    After a driver crash Optuna's storage may be ahead of that snapshot; the storage is then the
    truth (see :meth:`adopt` and :meth:`_orphan`).
    """

    _UNPICKLED = ("_study_cache", "_optuna_storage", "_handles")  # reopened from the fields below

    def __init__(self, *, storage: optuna.storages.RDBStorage, study_name: str,
                 space: dict[str, optuna.distributions.BaseDistribution], sampler: optuna.samplers.BaseSampler,
                 max_t: int, arm: str = "") -> None:
        super().__init__(metric=METRIC, mode=MODE)
        # Ray's OptunaSearch also disables Optuna's pruner: ASHA decides stops, Optuna records them.
        self._study_cache: optuna.Study | None = optuna.create_study(
            storage=storage, sampler=sampler, pruner=optuna.pruners.NopPruner(), study_name=study_name,
            direction="maximize", load_if_exists=True)
        self._optuna_storage: optuna.storages.RDBStorage | None = storage
        self._storage_url = storage.url
        self._sampler = sampler
        self._study_name = study_name
        self._space = dict(space)
        self._max_t = int(max_t)
        self._arm = arm
        self._handles: dict[str, optuna.trial.Trial] | None = {}
        self._trial_numbers: dict[str, int] = {}
        self._done: set[str] = set()
        self._last_step: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self._handles is not None:
            state["_trial_numbers"] = {tid: t.number for tid, t in self._handles.items()}
        state.update(dict.fromkeys(self._UNPICKLED))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_trials" in state:  # pickled before trials were kept by number: same fields, older form
            state["_trial_numbers"] = {tid: t.number for tid, t in state.pop("_trials").items()}
            state["_sampler"] = state.pop("_study").sampler
            state["_storage_url"] = state["_optuna_storage"].url
        super().__setstate__({**state, **dict.fromkeys(self._UNPICKLED)})

    def _relocate(self, folder: StudyPaths) -> None:
        self._storage_url = sqlite_url(folder.optuna_db)

    @property
    def _study(self) -> optuna.Study:
        if self._study_cache is None:
            self._optuna_storage = _rdb_storage(self._storage_url)
            self._study_cache = optuna.load_study(study_name=self._study_name, storage=self._optuna_storage,
                                                  sampler=self._sampler, pruner=optuna.pruners.NopPruner())
        return self._study_cache

    @property
    def _trials(self) -> dict[str, optuna.trial.Trial]:
        """Tune trial id -> handle on its Optuna trial (reopened by number after unpickling)."""
        if self._handles is None:
            self._handles = {tid: self._handle(number) for tid, number in self._trial_numbers.items()}
        return self._handles

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the space, metric and mode are this arm's own

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return next(t for t in self._study.get_trials(deepcopy=False) if t.number == number)

    def _handle(self, number: int) -> optuna.trial.Trial:
        """A handle on an Optuna trial asked by an earlier driver (its number is in the storage)."""
        # Public storage API for the storage's trial id; Trial(study, trial_id) is how ask() builds it.
        study = self._study
        storage = self._optuna_storage  # opened with the study
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self._study_name), number)
        return optuna.trial.Trial(study, trial_id)

    def _orphan(self) -> optuna.trial.Trial | None:
        """A RUNNING Optuna trial this searcher does not know: asked after the last Tune snapshot
        by a driver that then died. After a resume it is handed out again (its parameters were
        drawn by the same TPE), so the study keeps exactly one Optuna trial per Tune trial."""
        known = {t.number for t in self._trials.values()}
        for frozen in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number not in known:
                return self._handle(frozen.number)
        return None

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id not in self._trials:
            trial = self._orphan() or self._study.ask(fixed_distributions=self._space)
            trial.set_user_attr("ray_trial_id", trial_id)
            trial.set_user_attr("arm", self._arm)
            self._trials[trial_id] = trial
        return dict(self._trials[trial_id].params)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._done or trial_id not in self._trials:
            return
        self._trials[trial_id].report(result[METRIC], _step(result))
        self._last_step[trial_id] = max(self._last_step.get(trial_id, 0), _step(result))

    def _told_state(self, trial_id: str) -> TrialState | None:
        """The state Optuna's storage holds for this trial if it is finished there, else None.
        After a crash the storage may be ahead of Tune's snapshot: told before the driver died."""
        state = self._frozen(self._trials[trial_id].number).state
        return state if state.is_finished() else None

    def adopt(self, trial_id: str, params: dict[str, Any], result: dict[str, Any]) -> bool:
        """Take over a finished Tune trial that this (restored) searcher never saw (see
        lift.tune.ledger). Returns True when it is mapped to its Optuna trial (the one tagged with
        its ray_trial_id; the caller then completes it with on_trial_complete), False when
        Optuna's storage had no trace of it and it was added there as finished, from `result`."""
        if trial_id in self._trials:
            return True
        for frozen in self._study.get_trials(deepcopy=False):
            if frozen.user_attrs.get("ray_trial_id") == trial_id:
                self._trials[trial_id] = self._handle(frozen.number)
                return True
        self._study.add_trial(self._finished_trial(params, result, {"ray_trial_id": trial_id, "arm": self._arm}))
        self._done.add(trial_id)
        return False

    def _finished_trial(self, params: dict[str, Any], result: dict,
                        user_attrs: dict[str, Any]) -> optuna.trial.FrozenTrial:
        """A finished Optuna trial from a Tune trial's last result (COMPLETE at full budget, else PRUNED)."""
        value = result.get(METRIC)
        full = _step(result) >= self._max_t and _finite(value)
        return optuna.trial.create_trial(
            params=params, distributions={k: self._space[k] for k in params},
            state=TrialState.COMPLETE if full else TrialState.PRUNED, value=float(value) if full else None,
            intermediate_values={_step(result): float(value)} if _finite(value) else None, user_attrs=user_attrs)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._trials:
            return
        if self._told_state(trial_id) is not None:
            # Told before a crash, or FAIL and now restarted by a resume (restart_errored).
            self._done.add(trial_id)
            if not error and result is not None:
                self._record_retry(trial_id, result)
            return
        self._done.add(trial_id)
        trial = self._trials[trial_id]
        value = None if result is None else result.get(METRIC)
        if error:
            self._study.tell(trial, state=TrialState.FAIL)
        elif result is None or value is None or _step(result) < self._max_t:
            # Earlier epochs reached Optuna through on_trial_result; the result that made ASHA stop
            # the trial only comes here, and TPE ranks pruned trials by their last intermediate value.
            if result is not None and _finite(value) and _step(result) > self._last_step.get(trial_id, 0):
                trial.report(float(value), _step(result))
            self._study.tell(trial, state=TrialState.PRUNED)
        else:
            self._study.tell(trial, value)  # COMPLETE, or FAIL (with Optuna's warning) if not finite

    def _record_retry(self, trial_id: str, result: dict) -> None:
        """A trial Optuna already recorded as FAIL was restarted by a resume and ended: Optuna
        cannot change a finished trial, so the new outcome becomes a trial of its own."""
        frozen = self._frozen(self._trials[trial_id].number)
        if frozen.state == TrialState.FAIL:
            self._study.add_trial(self._finished_trial(frozen.params, result,
                                                       {**frozen.user_attrs, "retry_of_number": frozen.number}))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    # Only the driver writes, but a user inspecting the file meanwhile must not make it fail.
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def sqlite_storage(path: Path) -> optuna.storages.RDBStorage:
    """The study's Optuna storage (an instance, shared by the arms' searchers)."""
    return _rdb_storage(sqlite_url(path))


def optuna_space(space: dict[str, SearchParam]) -> dict[str, optuna.distributions.BaseDistribution]:
    """Parameter names are the dotted LIFT config keys, so Optuna shows `loss.lpips`, `optim.lr`."""
    return {name: optuna.distributions.FloatDistribution(p.low, p.high, log=p.log) for name, p in space.items()}


def optuna_study_name(study_name: str, arm_key: str) -> str:
    return f"{study_name}/{arm_key}"


def drop_optuna_study(storage: optuna.storages.RDBStorage, name: str) -> bool:
    """Delete a study left by a run that never recorded its Tune state, so that a fresh start of
    that arm does not inherit orphaned RUNNING trials. Returns whether one existed."""
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        return False
    return True


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE models the results. Optuna's default (10) would leave a small
    per-arm budget entirely random; a third of the budget, at least 2, keeps TPE in play."""
    return max(2, num_samples // 3)


def make_searcher(*, storage: optuna.storages.RDBStorage, study_name: str, arm_key: str,
                  space: dict[str, SearchParam], seed: int, max_t: int, max_concurrent: int,
                  num_samples: int) -> ConcurrencyLimiter:
    """Seeded TPE for one arm behind a concurrency limit."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(num_samples))
    searcher = OptunaArmSearch(storage=storage, study_name=study_name, space=optuna_space(space), sampler=sampler,
                               max_t=max_t, arm=arm_key)
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def choose_best(candidates: list[tuple[float, str, dict[str, Any]]]) -> tuple[float, str, dict[str, Any]] | None:
    """The best full-budget trial: highest final val_psnr, ties broken by the larger trial id (a
    fixed, order-independent rule, shared by the searcher and the study summary)."""
    finite = [c for c in candidates if isinstance(c[0], (int, float)) and not math.isnan(c[0])]
    return max(finite, key=lambda c: (c[0], c[1])) if finite else None


class ArmSearcher(_Relocatable, Searcher):
    """The whole study's trials behind one Tune search algorithm (see the module doc).

    `arms` maps an arm key to (its tuning searcher, the study info of its trials: arm, slug, seed).
    Each arm gets exactly `num_samples` tuning trials (one number for all, or per arm key: the study's
    budget rule gives the control as many trials as all offsets of a window together). Once all of an arm's tuning trials have
    ended, its best full-budget configuration (:func:`choose_best`) is queued for one confirm run
    per seed of `confirm_seeds`; they run whenever no tuning trial can be handed out.
    An arm without any full-budget trial gets no confirm runs (:attr:`failed_arms`).
    """

    # Defaults for a searcher unpickled from a study started before the ledger existed.
    _adopt_pending = False
    _ledger_confirm: frozenset[tuple[str, int]] = frozenset()

    def __init__(self, arms: dict[str, tuple[Searcher, dict[str, Any]]], num_samples: int | dict[str, int], *,
                 max_t: int, confirm_seeds: list[int], ledger: TrialLedger | None = None) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self._ledger = ledger
        # Set when restored from a Tune snapshot, which may lag the ledger (lift.tune.ledger).
        self._adopt_pending = False
        self._ledger_confirm: set[tuple[str, int]] = set()
        self._arms = {key: searcher for key, (searcher, _) in arms.items()}
        # The arm's own Optuna search, behind its ConcurrencyLimiter (whose `searcher` is public).
        self._optuna = {key: s.searcher if isinstance(s, ConcurrencyLimiter) else s for key, s in self._arms.items()}
        self._info = {key: dict(info) for key, (_, info) in arms.items()}
        self._order = list(arms)
        self._budget = ({key: int(num_samples[key]) for key in arms} if isinstance(num_samples, dict)
                        else {key: int(num_samples) for key in arms})
        self._max_t = int(max_t)
        self._confirm_seeds = [int(s) for s in confirm_seeds]
        self._suggested = {key: 0 for key in arms}
        # Per arm: trial id -> its full-budget val_psnr, or None (stopped early or failed).
        self._ended: dict[str, dict[str, float | None]] = {key: {} for key in arms}
        self._params: dict[str, dict[str, Any]] = {}
        self._trial_arm: dict[str, str] = {}
        self._confirm_trials: set[str] = set()
        self._confirm_queue: list[dict[str, Any]] = []
        self.best: dict[str, dict[str, Any]] = {}
        self.failed_arms: list[str] = []

    @property
    def total_trials(self) -> int:
        return sum(self._budget.values()) + len(self._order) * len(self._confirm_seeds)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # Each arm's searcher has its own space, metric and mode already.
        return True

    def _finished(self) -> bool:
        tuned = all(len(self._ended[a]) >= self._budget[a] for a in self._order)
        return tuned and not self._confirm_queue

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self._adopt_pending = self._ledger is not None

    def _adopt_ledger(self) -> None:
        """Count the ledger's finished trials that the restored snapshot never saw, so that none
        is handed out again: tuning trials complete in their arm (and in Optuna), confirm runs
        leave the queue."""
        self._adopt_pending = False
        assert self._ledger is not None
        for trial_id, entry in self._ledger.entries().items():
            arm = entry.get("arm")
            if trial_id in self._trial_arm or arm not in self._arms:
                continue
            self._trial_arm[trial_id] = arm
            if entry.get("stage") == "confirm":
                self._confirm_trials.add(trial_id)
                seed = int(entry["seed"])
                self._ledger_confirm.add((arm, seed))
                self._confirm_queue = [r for r in self._confirm_queue
                                       if (r["study"]["arm"], int(r["study"]["seed"])) != (arm, seed)]
                continue
            self._suggested[arm] = min(self._budget[arm], self._suggested[arm] + 1)
            self._params[trial_id] = dict(entry["params"])
            optuna_search = self._optuna[arm]
            if optuna_search.adopt(trial_id, entry["params"], entry["result"]):
                optuna_search.on_trial_complete(trial_id, result=entry["result"])
            self._end(arm, trial_id, entry["result"], error=False)

    def suggest(self, trial_id: str) -> dict | None:
        if self._adopt_pending:
            self._adopt_ledger()
        open_arms = [a for a in self._order if self._suggested[a] < self._budget[a]]
        # Fewest trials first keeps the arms in step; ties go to the study's arm order.
        for arm in sorted(open_arms, key=lambda a: (self._suggested[a], self._order.index(a))):
            config = self._arms[arm].suggest(trial_id)
            if config is None:  # this arm is at its concurrency limit
                continue
            if config == Searcher.FINISHED:
                self._suggested[arm] = self._budget[arm]
                continue
            self._suggested[arm] += 1
            self._trial_arm[trial_id] = arm
            self._params[trial_id] = dict(config)
            return {**config, "study": {**self._info[arm], "stage": "tune"}}
        # Tuning trials go first: they unlock their arm's confirm runs, which then fill the slots
        # that concurrency limits leave free and pack the end of the study.
        if self._confirm_queue:
            run = self._confirm_queue.pop(0)
            self._trial_arm[trial_id] = run["study"]["arm"]
            self._confirm_trials.add(trial_id)
            return run
        # Nothing to hand out now: either everything is handed out and the queue will stay empty,
        # or running tuning trials will end and release concurrency or queue confirm runs.
        return Searcher.FINISHED if self._finished() else None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        arm = self._trial_arm.get(trial_id)
        if arm is not None and trial_id not in self._confirm_trials:
            self._arms[arm].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if self._adopt_pending:
            self._adopt_ledger()
        arm = self._trial_arm.get(trial_id)
        if arm is None or trial_id in self._confirm_trials:
            return
        entry = self._ledger.get(trial_id) if self._ledger is not None else None
        if entry is not None:
            # Finished before a crash: the ledger's outcome, not the lagging snapshot's last result.
            if trial_id in self._ended[arm]:
                return
            result, error = entry["result"], False
        self._arms[arm].on_trial_complete(trial_id, result=result, error=error)
        self._end(arm, trial_id, result, error)

    def _end(self, arm: str, trial_id: str, result: dict | None, error: bool) -> None:
        full = not error and result is not None and int(result.get("training_iteration", 0)) >= self._max_t
        # A trial restarted after an error (Tuner.restore(restart_errored=True)) ends twice: the
        # later outcome replaces the earlier one. An arm's confirm runs are decided once.
        self._ended[arm][trial_id] = float(result.get(METRIC, float("nan"))) if full else None
        decided = arm in self.best or arm in self.failed_arms
        if not decided and len(self._ended[arm]) >= self._budget[arm]:
            self._queue_confirm(arm)

    def _queue_confirm(self, arm: str) -> None:
        best = choose_best([(v, t, self._params[t]) for t, v in self._ended[arm].items() if v is not None])
        if best is None:
            self.failed_arms.append(arm)
            return
        value, trial_id, params = best
        self.best[arm] = {"trial_id": trial_id, "val_psnr": value, "params": dict(params)}
        for seed in self._confirm_seeds:
            if (arm, seed) in self._ledger_confirm:
                continue  # finished before a crash (lift.tune.ledger)
            self._confirm_queue.append({**params, "study": {**self._info[arm], "stage": "confirm", "seed": seed,
                                                            "tuned_trial": trial_id}})


class StudySearchGenerator(SearchGenerator):
    """Tune's wrapper of the study's searcher (what it makes of any ``Searcher``), re-pointing a
    restored experiment at the folder being driven.

    Tune's ``SearchGenerator`` pickles the ``Experiment`` it creates new trials from, storage
    location included, and restores it on resume as it was: trials created after resuming a copied
    or moved study would otherwise be written into the original folder (or fail where it is gone).
    """

    def set_state(self, state: dict[str, Any]) -> None:
        folder = driven_folder()
        experiment = state.get("experiment")
        if folder is not None and experiment is not None:
            # The experiment runs in <study>/trials (RunConfig(storage_path=<study>, name="trials")).
            experiment.storage.storage_fs_path = folder.root.as_posix()
            experiment.storage.experiment_dir_name = folder.trials_dir.name
        super().set_state(state)


class PerArmScheduler(_Relocatable, FIFOScheduler):
    """One scheduler (ASHA) per arm for the tuning trials, so a trial is only compared with
    trials of its own arm; confirm runs are never stopped early (first in, first out)."""

    def __init__(self, schedulers: dict[str, TrialScheduler], ledger: TrialLedger | None = None) -> None:
        super().__init__()
        self._ledger = ledger
        self._by_arm = dict(schedulers)
        self._confirm = FIFOScheduler()
        self._metric = METRIC

    def _for(self, trial: Any) -> TrialScheduler:
        study = trial.config["study"]
        return self._confirm if study.get("stage") == "confirm" else self._by_arm[study["arm"]]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return all(s.set_search_properties(metric, mode, **spec) for s in self._by_arm.values())

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._for(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._for(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        return self._for(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        # Tune calls this first when a trial ends without error (before the searcher, callbacks
        # and any snapshot): the ledger records it here (lift.tune.ledger).
        if self._ledger is not None:
            checkpoint = trial.checkpoint
            self._ledger.record(entry_for(trial.trial_id, trial.config, result, path=trial.path,
                                          checkpoint=checkpoint.path if checkpoint is not None else None))
        self._for(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._for(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(f"[{arm}] {s.debug_string()}" for arm, s in self._by_arm.items())


def make_asha(*, max_t: int, grace_period: int, reduction_factor: int) -> ASHAScheduler:
    return ASHAScheduler(time_attr="training_iteration", metric=METRIC, mode=MODE, max_t=max_t,
                         grace_period=grace_period, reduction_factor=reduction_factor)
