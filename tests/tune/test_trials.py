"""lift.tune.trials: the parts of the Tune experiment that need no Ray cluster (the e2e tests run the rest)."""

from __future__ import annotations

import os
import pickle
import signal
import time
from types import SimpleNamespace
from typing import Any

import pytest
from ray import tune
from ray.tune import Callback

from lift.tune.study_config import StudyError
from lift.tune.study_folder import StudyPaths
from lift.tune.trials import SessionCallbacks, ctrl_c_stops_tune, restore_tuner, trial_dirname


class Recorder(Callback):
    def __init__(self, name: str, log: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.name, self.log = name, log

    def setup(self, **info: Any) -> None:
        self.log.append((self.name, "setup", info))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log.append((self.name, "on_trial_complete", {"iteration": iteration, "trial": trial}))


def test_session_callbacks_reach_the_session_that_runs_the_experiment() -> None:
    """Tuner.restore brings back the first session's RunConfig: its forwarder must call the resuming
    session's callbacks, not the pickled ones of the first session."""
    log: list = []
    try:
        SessionCallbacks._session = None
        first = SessionCallbacks([Recorder("first", log)])
        first.setup(stop=None, num_samples=2)
        assert log == [("first", "setup", {"stop": None, "num_samples": 2})]
        restored = pickle.loads(pickle.dumps(first))  # what tuner.pkl holds
        SessionCallbacks.use([Recorder("resumed", log)])
        restored.on_trial_complete(iteration=3, trials=[], trial="t1")
        assert log[-1] == ("resumed", "on_trial_complete", {"iteration": 3, "trial": "t1"})
        SessionCallbacks.use(None)  # a resumed session without callbacks calls none
        restored.on_trial_complete(iteration=4, trials=[], trial="t2")
        assert len(log) == 2
        # Every hook Ray defines is forwarded (Ray checks this for a callback container at class creation).
        hooks = [name for name in vars(Callback) if name.startswith("on_") or name == "setup"]
        assert hooks and all(name in vars(SessionCallbacks) for name in hooks)
    finally:
        SessionCallbacks._session = None


def test_trial_folders_name_the_arm_and_the_confirm_seed() -> None:
    tune_trial = SimpleNamespace(trial_id="ab_00001", config={"study": {"slug": "w15_o1", "stage": "tune"}})
    confirm = SimpleNamespace(trial_id="ab_00009", config={"study": {"slug": "w3", "stage": "confirm", "seed": 1001}})
    assert trial_dirname(tune_trial) == "w15_o1_ab_00001"
    assert trial_dirname(confirm) == "w3_seed1001_ab_00009"


def test_a_snapshot_from_another_version_is_refused_with_the_folder_named(tmp_path) -> None:
    """A Tune snapshot that pickles a class this version no longer has (a study started before the
    searcher was rewritten): one StudyError naming the folder, not Tune's unpickling traceback."""
    trials_dir = tmp_path / "study" / "trials"
    trials_dir.mkdir(parents=True)
    (trials_dir / "tuner.pkl").write_bytes(b"clift.tune.search\nBudgetAwareOptunaSearch\n.")
    assert tune.Tuner.can_restore(str(trials_dir))
    with pytest.raises(StudyError, match="another version of lift") as err:
        restore_tuner(StudyPaths(tmp_path / "study"), lambda config: None)
    assert str(trials_dir) in str(err.value) and "BudgetAwareOptunaSearch" in str(err.value)


class CtrlCAfterFirstResult(Callback):
    """Press Ctrl-C (a real SIGINT to this process) once the first trial has reported."""

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def _slow(config: dict) -> None:
    for i in range(200):
        time.sleep(0.05)
        tune.report({"i": i})


def test_ctrl_c_stops_tune_gracefully_and_is_remembered(ray_session: str, tmp_path) -> None:
    """Tune's own handler stops the run too, but fit() then returns as if it had ended."""
    tuner = tune.Tuner(_slow, tune_config=tune.TuneConfig(num_samples=2),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                                 callbacks=[CtrlCAfterFirstResult()]))
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_stops_tune() as ctrl_c:
        grid = tuner.fit()  # returns: Tune stopped on the signal, saving its state
    assert ctrl_c.pressed  # (no wall-time bound: the metrics below show the stop, and load only adds time)
    # Tune reports the trials it stopped as TERMINATED, like finished ones: only the flag tells.
    assert all((r.metrics or {}).get("i", -1) < 199 for r in grid) and tune.Tuner.can_restore(str(tmp_path / "exp"))
    assert signal.getsignal(signal.SIGINT) is before and "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    with pytest.raises(KeyboardInterrupt):  # before a Tune run listens (or a second press): at once
        with ctrl_c_stops_tune():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
