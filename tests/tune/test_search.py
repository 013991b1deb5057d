"""Per-arm Optuna search and ASHA (no Ray cluster needed: searchers and schedulers are plain objects)."""

from __future__ import annotations

import hashlib
import pickle
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import optuna
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from lift.tune.search import (
    ArmSearcher,
    OptunaArmSearch,
    choose_best,
    PerArmScheduler,
    make_asha,
    make_searcher,
    sqlite_storage,
)
from lift.tune.ledger import TrialLedger
from lift.tune.study_config import SearchParam
from lift.tune.study_folder import StudyPaths, hold_folder

SPACE = {"loss.lpips": SearchParam(0.0, 0.2), "optim.lr": SearchParam(1e-4, 1e-2, log=True)}


def _searcher(storage, name: str, *, max_concurrent: int = 2, seed: int = 0, max_t: int = 3):
    return make_searcher(storage=storage, study_name=name, arm_key=name, space=SPACE, seed=seed, max_t=max_t,
                         max_concurrent=max_concurrent, num_samples=4)


def _trials(storage, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).trials


def test_asha_stopped_trials_are_pruned_in_optuna(tmp_path: Path) -> None:
    storage = sqlite_storage(tmp_path / "optuna.db")
    s = _searcher(storage, "arm")
    full, stopped = s.suggest("full"), s.suggest("stopped")
    assert set(full) == set(SPACE) and 0.0 <= full["loss.lpips"] <= 0.2 and 1e-4 <= full["optim.lr"] <= 1e-2
    assert s.suggest("third") is None  # concurrency limit 2
    for it in (1, 2):
        s.on_trial_result("full", {"val_psnr": 20.0 + it, "training_iteration": it})
    s.on_trial_complete("full", {"val_psnr": 23.5, "training_iteration": 3})
    s.on_trial_result("stopped", {"val_psnr": 18.0, "training_iteration": 1})
    # ASHA's stopping result reaches the searcher only through on_trial_complete.
    s.on_trial_complete("stopped", {"val_psnr": 18.5, "training_iteration": 2})
    s.suggest("failed")
    s.on_trial_complete("failed", None, error=True)

    by_id = {t.user_attrs["ray_trial_id"]: t for t in _trials(storage, "arm")}
    assert by_id["full"].state == TrialState.COMPLETE and by_id["full"].value == 23.5
    # Optuna shows a pruned trial's last intermediate value as its value; TPE ranks it by state.
    assert by_id["stopped"].state == TrialState.PRUNED and by_id["stopped"].value == 18.5
    assert by_id["stopped"].intermediate_values == {1: 18.0, 2: 18.5}
    assert by_id["failed"].state == TrialState.FAIL
    assert {t.user_attrs["arm"] for t in by_id.values()} == {"arm"}
    assert optuna.load_study(study_name="arm", storage=storage).best_trial.user_attrs["ray_trial_id"] == "full"


def test_seeded_tpe_reproduces_its_suggestions(tmp_path: Path) -> None:
    a = _searcher(sqlite_storage(tmp_path / "a.db"), "arm", seed=7)
    b = _searcher(sqlite_storage(tmp_path / "b.db"), "arm", seed=7)
    c = _searcher(sqlite_storage(tmp_path / "c.db"), "arm", seed=8)
    assert a.suggest("x") == b.suggest("x") != c.suggest("x")


def _arm_searcher(tmp_path: Path, per_arm_concurrency: int = 1) -> ArmSearcher:
    storage = sqlite_storage(tmp_path / "optuna.db")
    arms = {key: (_searcher(storage, key, max_concurrent=per_arm_concurrency), {"arm": key, "seed": 0})
            for key in ("window=3", "window=7,offset=1")}
    return ArmSearcher(arms, num_samples=2, max_t=3, confirm_seeds=[1000, 1001])


def _full(psnr: float) -> dict:
    return {"val_psnr": psnr, "training_iteration": 3}


def test_arm_searcher_gives_each_arm_its_budget_then_its_confirm_runs(tmp_path: Path) -> None:
    s = _arm_searcher(tmp_path)
    assert s.total_trials == 2 * (2 + 2)
    t1, t2 = s.suggest("t1"), s.suggest("t2")
    assert [t1["study"]["arm"], t2["study"]["arm"]] == ["window=3", "window=7,offset=1"]
    assert t1["study"]["stage"] == "tune" and t1["study"]["seed"] == 0
    assert s.suggest("x") is None  # both arms at their concurrency limit of 1
    s.on_trial_complete("t2", _full(20.0))
    assert s.suggest("t3")["study"]["arm"] == "window=7,offset=1"
    s.on_trial_complete("t1", _full(21.0))
    assert s.suggest("t4")["study"]["arm"] == "window=3"
    # Every tuning trial is out, none of the arms has finished tuning: wait.
    assert s.suggest("x") is None
    # t3 is stopped early by ASHA (1 of 3 epochs): window 7's best is t2; its confirm runs come next.
    s.on_trial_complete("t3", {"val_psnr": 25.0, "training_iteration": 1})
    runs = [s.suggest("c1"), s.suggest("c2")]
    assert [r["study"]["seed"] for r in runs] == [1000, 1001]
    for run in runs:
        assert run["study"] == {"arm": "window=7,offset=1", "seed": run["study"]["seed"], "stage": "confirm",
                                "tuned_trial": "t2"}
        assert {k: v for k, v in run.items() if k != "study"} == {k: v for k, v in t2.items() if k != "study"}
    assert s.suggest("x") is None
    s.on_trial_complete("t4", None, error=True)
    assert [s.suggest("c3")["study"]["tuned_trial"], s.suggest("c4")["study"]["tuned_trial"]] == ["t1", "t1"]
    assert s.suggest("x") == Searcher.FINISHED
    assert s.best["window=7,offset=1"]["trial_id"] == "t2" and s.best["window=3"]["val_psnr"] == 21.0
    # Confirm runs never reach Optuna: each arm's study holds its 2 tuning trials.
    for run_id in ("c1", "c2", "c3", "c4"):
        s.on_trial_complete(run_id, _full(30.0))
    storage = sqlite_storage(tmp_path / "optuna.db")
    assert [len(_trials(storage, k)) for k in ("window=3", "window=7,offset=1")] == [2, 2]


def test_an_arm_without_a_full_budget_trial_gets_no_confirm_runs(tmp_path: Path) -> None:
    s = _arm_searcher(tmp_path, per_arm_concurrency=2)
    ids = [f"t{i}" for i in range(4)]
    arms = {i: s.suggest(i)["study"]["arm"] for i in ids}
    for i in ids:
        s.on_trial_complete(i, None, error=True) if arms[i] == "window=3" else s.on_trial_complete(i, _full(20.0))
    assert s.failed_arms == ["window=3"]
    assert {s.suggest("c1")["study"]["arm"], s.suggest("c2")["study"]["arm"]} == {"window=7,offset=1"}
    assert s.suggest("x") == Searcher.FINISHED


def test_choose_best_is_order_independent() -> None:
    a, b, c = (30.0, "b", {}), (30.0, "a", {}), (29.0, "c", {})
    assert choose_best([a, b, c]) == choose_best([c, b, a]) == a
    assert choose_best([(float("nan"), "x", {})]) is None


def test_arm_searcher_state_survives_save_and_restore(tmp_path: Path) -> None:
    s = _arm_searcher(tmp_path, per_arm_concurrency=2)
    s.suggest("t1")
    s.suggest("t2")
    s.on_trial_result("t1", {"val_psnr": 19.0, "training_iteration": 1})
    s.save(str(tmp_path / "searcher.pkl"))  # Tune's last snapshot ...
    lost = s.suggest("t3")  # ... then an Optuna trial is asked and the driver dies

    (tmp_path / "other").mkdir()
    restored = _arm_searcher(tmp_path / "other")
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_complete("t1", _full(20.0))
    again = restored.suggest("t4")
    # The orphaned Optuna trial is handed out again, with the parameters TPE drew for it.
    assert again == lost
    trials = _trials(sqlite_storage(tmp_path / "optuna.db"), "window=3")
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert trials[0].intermediate_values == {1: 19.0} and trials[1].user_attrs["ray_trial_id"] == "t4"
    assert len(_trials(sqlite_storage(tmp_path / "optuna.db"), "window=7,offset=1")) == 1


def _trial(trial_id: str, arm: str, stage: str = "tune") -> Trial:
    return Trial("lift_trainable", config={"study": {"arm": arm, "stage": stage}}, trial_id=trial_id, stub=True)


def test_each_arm_has_its_own_asha_and_confirm_runs_are_never_stopped() -> None:
    sched = PerArmScheduler({arm: make_asha(max_t=4, grace_period=1, reduction_factor=2)
                             for arm in ("window=3", "window=7,offset=1")})
    good3, weak3, weak7 = _trial("a", "window=3"), _trial("b", "window=3"), _trial("c", "window=7,offset=1")
    confirm3 = _trial("d", "window=3", stage="confirm")
    for t in (good3, weak3, weak7, confirm3):
        sched.on_trial_add(None, t)
    result = lambda psnr: {"val_psnr": psnr, "training_iteration": 1}  # noqa: E731
    assert sched.on_trial_result(None, good3, result(30.0)) == TrialScheduler.CONTINUE
    # Worse than its own arm's rung: stopped; equally weak in an arm of its own: continues.
    assert sched.on_trial_result(None, weak3, result(10.0)) == TrialScheduler.STOP
    assert sched.on_trial_result(None, weak7, result(10.0)) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, confirm3, result(5.0)) == TrialScheduler.CONTINUE


def test_arm_searcher_budget_per_arm(tmp_path: Path) -> None:
    """The budget rule: the control gets as many tuning trials as all offsets of a window together."""
    storage = sqlite_storage(tmp_path / "optuna.db")
    arms = {key: (_searcher(storage, key, max_concurrent=4), {"arm": key, "seed": 0})
            for key in ("window=3", "window=7,offset=1", "window=7,offset=2")}
    s = ArmSearcher(arms, num_samples={"window=3": 4, "window=7,offset=1": 2, "window=7,offset=2": 2}, max_t=3,
                    confirm_seeds=[1000])
    assert s.total_trials == 4 + 2 + 2 + 3
    handed = [s.suggest(f"t{i}") for i in range(8)]
    arms_of_trials = [h["study"]["arm"] for h in handed if h]
    assert arms_of_trials.count("window=3") == 4 and arms_of_trials.count("window=7,offset=2") == 2
    assert s.suggest("x") is None


def test_a_full_budget_trial_without_a_finite_value_fails_instead_of_staying_running(tmp_path: Path) -> None:
    storage = sqlite_storage(tmp_path / "optuna.db")
    s = _searcher(storage, "arm")
    s.suggest("diverged")
    s.suggest("removed")
    s.on_trial_complete("diverged", {"val_psnr": float("nan"), "training_iteration": 3})
    s.on_trial_complete("removed")  # Tune removed it before it ran: no result, no error
    by_id = {t.user_attrs["ray_trial_id"]: t.state for t in _trials(storage, "arm")}
    assert by_id == {"diverged": TrialState.FAIL, "removed": TrialState.PRUNED}


def test_lift_uses_no_private_ray_or_optuna_attribute() -> None:
    """Ray Tune and Optuna through their public APIs only (issue 16): the attributes the search and the
    study once reached into must not come back."""
    private = re.compile(r"\._ot_|_local_tuner|_completed_trials|\._trial_id\b|\._study_id\b|study\._storage\b")
    lift_dir = Path(__file__).resolve().parents[2] / "lift"
    hits = [f"{path.relative_to(lift_dir.parent)}:{i}: {line.strip()}" for path in sorted(lift_dir.rglob("*.py"))
            for i, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)]
    assert not hits, "private Ray/Optuna attributes used:\n" + "\n".join(hits)


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_unpickled_searcher_and_scheduler_write_only_into_the_folder_being_driven(tmp_path: Path) -> None:
    """What Tune pickles (tuner.pkl, the searcher snapshot) names no folder a resume trusts: a copy
    resumed writes into itself, never into the original, and a moved folder resumes without it."""
    original = StudyPaths(tmp_path / "original")
    original.trials_dir.mkdir(parents=True)
    original.study_yaml.write_text("name: s\n")  # a study folder (hold_folder refuses other folders)
    ledger = TrialLedger(original.ledger)
    arms = {key: (_searcher(sqlite_storage(original.optuna_db), key), {"arm": key, "seed": 0}) for key in ("a", "b")}
    searcher = ArmSearcher(arms, num_samples=2, max_t=3, confirm_seeds=[1000], ledger=ledger)
    scheduler = PerArmScheduler({key: make_asha(max_t=3, grace_period=1, reduction_factor=2) for key in arms}, ledger)
    configs = {tid: searcher.suggest(tid) for tid in ("t1", "t2")}
    searcher.save(str(original.trials_dir / "searcher.pkl"))
    tuner_pkl = pickle.dumps((searcher, scheduler))  # as Tune writes tuner.pkl
    copy = StudyPaths(tmp_path / "copy")
    shutil.copytree(original.root, copy.root)
    before = _checksums(original.root)

    with hold_folder(copy):
        restored, sched = pickle.loads(tuner_pkl)
        restored.restore(str(copy.trials_dir / "searcher.pkl"))
        trial = Trial("lift_trainable", config=configs["t1"], trial_id="t1", stub=True)
        trial.storage = SimpleNamespace(trial_fs_path=str(copy.trials_dir / "a_t1"))  # a stub has no storage
        sched.on_trial_add(None, trial)
        sched.on_trial_complete(None, trial, _full(20.0))
        restored.on_trial_complete("t1", _full(20.0))
        restored.suggest("t3")
    assert _checksums(original.root) == before, "the resumed copy wrote into the original folder"
    assert [t.state for t in _trials(sqlite_storage(copy.optuna_db), "a")] == [TrialState.COMPLETE,
                                                                               TrialState.RUNNING]
    assert TrialLedger(copy.ledger).get("t1")["path"] == str(copy.trials_dir / "a_t1")

    moved = StudyPaths(tmp_path / "moved")
    original.root.rename(moved.root)
    with hold_folder(moved):
        restored, _ = pickle.loads(tuner_pkl)  # no trace of the original path is opened
        restored.restore(str(moved.trials_dir / "searcher.pkl"))
        restored.on_trial_complete("t2", _full(21.0))
    assert not original.root.exists()
    assert TrialState.COMPLETE in {t.state for t in _trials(sqlite_storage(moved.optuna_db), "b")}


def test_a_searcher_pickled_before_trials_were_kept_by_number_still_restores(tmp_path: Path) -> None:
    """A study interrupted under the previous lift pickled each arm's Optuna study and trial handles."""
    storage = sqlite_storage(tmp_path / "optuna.db")
    searcher = _searcher(storage, "arm").searcher
    searcher.suggest("t1")
    old = {k: v for k, v in searcher.__dict__.items() if k not in ("_study_cache", "_handles", "_trial_numbers",
                                                                   "_storage_url", "_sampler")}
    old.update({"_study": searcher._study, "_trials": dict(searcher._trials), "_optuna_storage": storage})
    restored = OptunaArmSearch.__new__(OptunaArmSearch)
    restored.__setstate__(pickle.loads(pickle.dumps(old)))
    restored.on_trial_complete("t1", _full(20.0))
    assert [t.state for t in _trials(storage, "arm")] == [TrialState.COMPLETE]
