"""The ledger of finished trials: written first when a trial ends, trusted over a lagging Tune
snapshot on resume (no Ray cluster needed: searcher, scheduler and ledger are plain objects)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import optuna
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.search import Searcher

from lift.tune.ledger import TrialLedger, entry_for
from lift.tune.search import ArmSearcher, PerArmScheduler, make_asha, make_searcher, sqlite_storage
from lift.tune.study_config import SearchParam

SPACE = {"loss.lpips": SearchParam(0.0, 0.2), "optim.lr": SearchParam(1e-4, 1e-2, log=True)}
ARMS = ("window=3", "window=7,offset=1")


def _arm_searcher(tmp_path: Path, ledger: TrialLedger) -> ArmSearcher:
    """What Tuner.restore rebuilds before loading the snapshot into it (same study, same storage)."""
    storage = sqlite_storage(tmp_path / "optuna.db")
    arms = {key: (make_searcher(storage=storage, study_name=key, arm_key=key, space=SPACE, seed=i, max_t=3,
                                max_concurrent=2, num_samples=2), {"arm": key, "slug": f"a{i}", "seed": 0})
            for i, key in enumerate(ARMS)}
    return ArmSearcher(arms, num_samples=2, max_t=3, confirm_seeds=[1000], ledger=ledger)


def _finish(searcher: ArmSearcher, ledger: TrialLedger, trial_id: str, config: dict, psnr: float,
            iters: int = 3) -> None:
    """A trial ends: the scheduler's hook writes the ledger first, then the searcher hears of it."""
    result = {"val_psnr": psnr, "training_iteration": iters, "trial_id": trial_id}
    ledger.record(entry_for(trial_id, config, result, path=f"/study/trials/{trial_id}", checkpoint=None))
    searcher.on_trial_complete(trial_id, result)


def _optuna(tmp_path: Path, arm: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=arm, storage=sqlite_storage(tmp_path / "optuna.db")).trials


def test_a_crash_with_a_lagging_snapshot_loses_and_reruns_no_finished_trial(tmp_path: Path) -> None:
    ledger = TrialLedger(tmp_path / "ledger")
    first = _arm_searcher(tmp_path, ledger)
    configs = {tid: first.suggest(tid) for tid in ("t1", "t2")}  # one per arm
    snapshot = tmp_path / "searcher.pkl"
    first.save(str(snapshot))  # Tune's last snapshot: t1 and t2 running
    configs["t3"] = first.suggest("t3")
    arm_of = {tid: c["study"]["arm"] for tid, c in configs.items()}
    # After the snapshot: t1 finishes (the snapshot shows it running), t3 starts and finishes (the
    # snapshot never saw it); then the whole study is killed.
    _finish(first, ledger, "t1", configs["t1"], 25.0)
    _finish(first, ledger, "t3", configs["t3"], 24.0, iters=1)  # stopped by ASHA after 1 epoch
    told = {arm: {t.user_attrs["ray_trial_id"]: (t.state, t.value) for t in _optuna(tmp_path, arm)} for arm in ARMS}

    resumed = _arm_searcher(tmp_path, ledger)
    resumed.restore(str(snapshot))
    # Tune restarts t1 from the snapshot; its trainable returns at once (it is in the ledger) and
    # Tune ends it with the snapshot's stale result: the ledger's outcome counts, Optuna is not re-told.
    resumed.on_trial_complete("t1", {"val_psnr": 11.0, "training_iteration": 2, "trial_id": "t1"})
    after = {arm: {t.user_attrs["ray_trial_id"]: (t.state, t.value) for t in _optuna(tmp_path, arm)} for arm in ARMS}
    assert after == told
    # t3 is adopted: its arm gets no extra tuning trial, its Optuna trial is not handed out again.
    handed = {}
    for i in range(10):
        config = resumed.suggest(f"n{i}")
        if config is None or config == Searcher.FINISHED:
            break
        handed[f"n{i}"] = config
    per_arm = {arm: sum(1 for c in {**configs, **handed}.values()
                        if c["study"]["arm"] == arm and c["study"]["stage"] == "tune") for arm in ARMS}
    assert per_arm == {arm: 2 for arm in ARMS}, (per_arm, arm_of)
    new_params = [{k: v for k, v in c.items() if k != "study"} for c in handed.values()
                  if c["study"]["stage"] == "tune"]
    for tid in ("t1", "t3"):
        old = {k: v for k, v in configs[tid].items() if k != "study"}
        assert old not in new_params, f"{tid} was handed out again"
    for arm in ARMS:
        states = [t.state for t in _optuna(tmp_path, arm)]
        assert len(states) == 2 and states.count(TrialState.RUNNING) == sum(
            1 for tid, c in {**configs, **handed}.items()
            if c["study"]["arm"] == arm and c["study"]["stage"] == "tune" and tid not in ("t1", "t3")), states
    # The arm whose trials all ended gets its confirm run of its best trial, t1 (the ledger's 25.0).
    confirm = [c for c in handed.values() if c["study"]["stage"] == "confirm"]
    assert [c["study"]["tuned_trial"] for c in confirm] == ["t1"]


def test_finished_confirm_runs_are_not_queued_again(tmp_path: Path) -> None:
    ledger = TrialLedger(tmp_path / "ledger")
    first = _arm_searcher(tmp_path, ledger)
    configs = {f"t{i}": first.suggest(f"t{i}") for i in range(4)}
    for i, (tid, config) in enumerate(configs.items()):
        _finish(first, ledger, tid, config, 20.0 + i)
    snapshot = tmp_path / "searcher.pkl"
    first.save(str(snapshot))  # both arms decided, confirm runs queued
    confirm = first.suggest("c1")
    assert confirm["study"]["stage"] == "confirm"
    ledger.record(entry_for("c1", confirm, {"val_psnr": 30.0, "training_iteration": 3}, path="/x/c1",
                            checkpoint=None))
    resumed = _arm_searcher(tmp_path, ledger)
    resumed.restore(str(snapshot))
    rest = [resumed.suggest(f"r{i}") for i in range(3)]
    runs = [c for c in rest if isinstance(c, dict)]
    assert len(runs) == 1 and runs[0]["study"]["arm"] != confirm["study"]["arm"]
    assert rest[-1] == Searcher.FINISHED


def test_the_scheduler_records_a_trial_before_anything_else_hears_of_it(tmp_path: Path) -> None:
    ledger = TrialLedger(tmp_path / "ledger")
    sched = PerArmScheduler({arm: make_asha(max_t=3, grace_period=1, reduction_factor=2) for arm in ARMS}, ledger)
    config = {"study": {"arm": ARMS[0], "stage": "tune", "seed": 0}, "optim.lr": 1e-3}
    trial = Trial("lift_trainable", config=config, trial_id="abc_00001", stub=True)
    trial.storage = SimpleNamespace(trial_fs_path="/study/trials/a0_abc_00001")  # a stub has no storage
    sched.on_trial_add(None, trial)
    sched.on_trial_complete(None, trial, {"val_psnr": 21.5, "training_iteration": 2, "config": config,
                                          "nan": float("nan")})
    entry = ledger.get("abc_00001")
    assert entry["path"] == "/study/trials/a0_abc_00001" and entry["checkpoint"] is None
    assert entry["arm"] == ARMS[0] and entry["stage"] == "tune" and entry["params"] == {"optim.lr": 1e-3}
    assert entry["result"]["val_psnr"] == 21.5 and "nan" not in entry["result"] and "config" not in entry["result"]
    # A later completion of the same trial (its instant return after a resume) keeps the first record.
    assert not ledger.record(entry_for("abc_00001", config, {"val_psnr": 1.0}, path=None, checkpoint=None))
    assert ledger.get("abc_00001")["result"]["val_psnr"] == 21.5
    assert "abc_00001" in ledger and list(ledger.entries()) == ["abc_00001"]


def test_entries_name_trial_folders_relative_to_the_study_so_a_copy_reads_its_own(tmp_path: Path) -> None:
    original = tmp_path / "study"
    ledger = TrialLedger(original / "ledger")
    config = {"study": {"arm": ARMS[0], "stage": "tune", "seed": 0}, "optim.lr": 1e-3}
    trial = original / "trials" / "a0_t1"
    ledger.record(entry_for("t1", config, {"val_psnr": 20.0}, path=str(trial), checkpoint=str(trial / "checkpoint_1")))
    stored = json.loads((original / "ledger" / "t1.json").read_text())
    assert (stored["path"], stored["checkpoint"]) == ("trials/a0_t1", "trials/a0_t1/checkpoint_1")
    assert ledger.get("t1")["path"] == str(trial)
    shutil.copytree(original, tmp_path / "copy")
    copied = TrialLedger(tmp_path / "copy" / "ledger").entries()["t1"]
    assert copied["path"] == str(tmp_path / "copy" / "trials" / "a0_t1")
    assert copied["checkpoint"] == str(tmp_path / "copy" / "trials" / "a0_t1" / "checkpoint_1")
