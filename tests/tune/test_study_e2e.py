"""One real toy study, end to end, through a crash of the whole study and a worker crash.

1. `studies/context_ablation.py` runs as its own driver with its own local Ray, in its own process
   group, and the whole of it (driver, Ray's processes, the trial workers: a power cut) is killed
   (SIGKILL) at a random moment after its ledger records a finished trial and Tune's snapshot shows
   another one midway, with a checkpoint.
2. The study is resumed in this process (`run_study(resume=True)`) with a Tune callback that
   kills (SIGKILL) the worker process of the first trial that checkpointed its 2nd epoch, once.
3. The finished study is checked: no finished trial lost or rerun (every trial in the ledger at the
   crash keeps its files and its outcome), the trial running at the crash and the one whose worker
   was killed continued from their checkpoints, every arm's per-sample tables on the same sample
   ids, every trial in the Optuna storage, a complete summary.
Everything is real: lift.train.fit trains a tiny network on the embedded real clips.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from ray import tune

from lift.model import pretrained
from lift.evaluate import read_samples_table
from lift.tune.study import run_study
from lift.tune.study_config import load_study_config
from lift.tune.trainable import TIMING_FILE

KILL_AT_EPOCH = 2

pytestmark = pytest.mark.slow


class KillWorkerOnce(tune.Callback):
    """SIGKILL the worker process of the first trial whose epoch-KILL_AT_EPOCH checkpoint Tune has
    just received (the worker is then training the next epoch), as an OOM kill would. The marker
    file keeps it to once across both Tuners of the study."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if os.path.exists(self.marker) or result.get("done") or result.get("training_iteration") != KILL_AT_EPOCH:
            return
        Path(self.marker).write_text(json.dumps({"trial_id": trial.trial_id, "pid": result["pid"]}))
        os.kill(int(result["pid"]), signal.SIGKILL)


def _files(trial_dir: Path) -> dict[str, str]:
    return {name: (trial_dir / name).read_text() for name in ("progress.csv", TIMING_FILE)}


@pytest.fixture(scope="module")
def study(ray_session: str, tiny_study, tmp_path_factory, crashed_study) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("e2e") / "study"
    crash = crashed_study(out, tiny_study)
    recorded, midway, seed = crash["recorded"], crash["midway"], crash["kill_seed"]
    finished = {tid: Path(e["path"]) for tid, e in recorded.items() if e["stage"] == "tune"}
    before = {tid: _files(path) for tid, path in finished.items()}
    assert not (out / "study_summary.json").exists()

    marker = out.parent / "killed.json"
    cfg = load_study_config("footage", list(tiny_study))
    t0 = time.perf_counter()
    outcome = run_study(cfg, out, resume=True, callbacks=[KillWorkerOnce(marker)], verbose=0, log=lambda *_: None,
                        allow_underpowered=True)
    return {"out": out, "summary": outcome.summary, "before": before, "finished": finished, "midway": midway,
            "recorded": recorded, "kill_seed": seed,
            "killed": json.loads(marker.read_text()) if marker.is_file() else None, "cfg": cfg,
            "resume_s": time.perf_counter() - t0}


def test_finished_trials_survive_the_driver_crash_and_are_not_rerun(study) -> None:
    trials = {t["trial_id"]: t for t in study["summary"]["trials"]}
    assert len(trials) == 4 and {t["arm"] for t in trials.values()} == {"window=3", "window=7,offset=1"}
    seed = study["kill_seed"]
    for trial_id, files in study["before"].items():
        assert trial_id in trials, f"finished trial {trial_id} was lost (kill seed {seed})"
        assert _files(study["finished"][trial_id]) == files, f"finished trial {trial_id} ran again (kill seed {seed})"
        assert len(json.loads(files[TIMING_FILE])) == 1
        # Its outcome is the one recorded when it ended.
        result = study["recorded"][trial_id]["result"]
        assert trials[trial_id]["epochs"] == result["training_iteration"]
        assert trials[trial_id]["final_val_psnr"] == pytest.approx(result["val_psnr"])
    assert study["summary"]["driver_sessions"] == 2


def test_trials_running_at_the_crash_continue_from_their_checkpoint(study) -> None:
    for trial_id, path in study["midway"].items():
        attempts = json.loads((path / TIMING_FILE).read_text())
        assert len(attempts) >= 2 and attempts[1]["resumed_from_epoch"] >= 1, attempts
        epochs = pd.read_csv(path / "progress.csv")["epoch"].tolist()
        assert epochs == list(range(1, len(epochs) + 1)), f"{trial_id}: epochs {epochs} repeated or skipped"
    # A trial resumed from a checkpoint (after the crash or a worker death) keeps the record of
    # its earlier attempts, even when it resumed in a new Ray session.
    for run in study["summary"]["trials"] + study["summary"]["confirm"]:
        attempts = json.loads((Path(run["path"]) / TIMING_FILE).read_text())
        assert attempts[0]["resumed_from_epoch"] is None
        assert all(a["resumed_from_epoch"] is not None for a in attempts[1:])


def test_killed_worker_restarts_from_its_checkpoint(study) -> None:
    killed = study["killed"]
    assert killed is not None, "no trial reached its 2nd epoch after the resume"
    runs = study["summary"]["trials"] + study["summary"]["confirm"]
    run = next(r for r in runs if r["trial_id"] == killed["trial_id"])
    attempts = json.loads((Path(run["path"]) / TIMING_FILE).read_text())
    # The attempt after the kill resumed from the epoch-2 checkpoint (an earlier attempt may have
    # been cut by the driver crash).
    assert len(attempts) >= 2 and attempts[-1]["resumed_from_epoch"] == KILL_AT_EPOCH
    progress = pd.read_csv(Path(run["path"]) / "progress.csv")
    # Each epoch reported once: epochs 1-2 before the kill, 3 after the restart from epoch 2.
    assert progress["epoch"].tolist() == [1, 2, 3]
    assert run["status"] == "COMPLETED" and run["attempts"] == len(attempts)
    assert study["summary"]["restarted_trials"] >= 1 and study["summary"]["failed_trials"] == 0


def test_every_arm_is_evaluated_on_the_same_sample_ids(study) -> None:
    out: Path = study["out"]
    test = read_samples_table(out / "test_samples.parquet")
    # The published model joins the baselines wherever its weights are fetched (make rife-weights).
    published = {"baseline=rife_hd"} if pretrained.available() else set()
    assert set(test["arm"]) == {"window=3", "window=7,offset=1", "baseline=repeat", "baseline=blend"} | published
    assert set(test["split"]) == {"test"}
    ids = {arm: frozenset(g["sample_id"]) for arm, g in test.groupby("arm")}
    assert len(set(ids.values())) == 1 and len(next(iter(ids.values()))) > 0
    confirm = study["summary"]["confirm"]
    assert {(r["arm"], r["seed"]) for r in confirm} == {("window=3", 1000), ("window=7,offset=1", 1000)}
    for r in confirm:
        table = read_samples_table(r["test_table"])
        assert set(table["seed"]) == {1000} and set(table["trial_id"]) == {r["trial_id"]}
    # The tuning trials' validation tables share their ids across arms too.
    val_ids = {frozenset(read_samples_table(Path(t["path"]) / "samples.parquet")["sample_id"])
               for t in study["summary"]["trials"]}
    assert len(val_ids) == 1 and not (next(iter(val_ids)) & next(iter(ids.values())))


def test_optuna_storage_holds_every_trial(study) -> None:
    storage = study["summary"]["optuna"]["storage"]
    trials = {t["trial_id"]: t for t in study["summary"]["trials"]}
    for arm in ("window=3", "window=7,offset=1"):
        ot = optuna.load_study(study_name=f"{study['cfg'].name}/{arm}", storage=storage).trials
        assert len(ot) == 2, f"{arm}: {len(ot)} Optuna trials"
        for t in ot:
            tune_trial = trials[t.user_attrs["ray_trial_id"]]
            assert tune_trial["arm"] == arm
            expected = {"COMPLETED": "COMPLETE", "STOPPED_EARLY": "PRUNED"}[tune_trial["status"]]
            assert t.state.name == expected
            assert t.params == pytest.approx(tune_trial["params"])


def test_summary_is_complete(study) -> None:
    s = study["summary"]
    assert s["complete"] and Path(s["test_table"]).is_file() and Path(s["baselines"]).is_file()
    assert {a["key"] for a in s["arms"]} == {"window=3", "window=7,offset=1"}
    for arm in s["arms"]:
        assert arm["best_trial"] in {t["trial_id"] for t in s["trials"] if t["status"] == "COMPLETED"}
    o = s["overhead"]
    assert o["wall_time_s"] > 0 and 0 < o["trial_time_s"] <= o["capacity_s"] and 0 <= o["overhead_fraction"] < 1
    assert set(s["stage_timings"]) >= {"validate", "trials", "baselines"}
    on_disk = json.loads((study["out"] / "study_summary.json").read_text())
    assert on_disk["overhead"] == pytest.approx(o)
