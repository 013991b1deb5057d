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

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from ray import tune

from lift.evaluate import read_samples_table
from lift.tune.ledger import LEDGER_DIR, TrialLedger
from lift.tune.study import run_study
from lift.tune.study_config import load_study_config
from lift.tune.trainable import TIMING_FILE

REPO = Path(__file__).resolve().parents[2]
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


def _snapshot(trials_dir: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """From Tune's last experiment snapshot (what a restore works from): (finished tuning trials,
    unfinished trials that already have a checkpoint)."""
    try:
        analysis = tune.ExperimentAnalysis(str(trials_dir))
    except Exception:  # no snapshot yet, or one being written
        return {}, {}
    finished = {t.trial_id: Path(t.path) for t in analysis.trials
                if t.status == "TERMINATED" and t.config["study"]["stage"] == "tune"}
    midway = {t.trial_id: Path(t.path) for t in analysis.trials
              if t.status not in ("TERMINATED", "ERROR") and t.checkpoint is not None}
    return finished, midway


def _files(trial_dir: Path) -> dict[str, str]:
    return {name: (trial_dir / name).read_text() for name in ("progress.csv", TIMING_FILE)}


def _process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc), collected before anything is killed."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _signal_everything(driver: subprocess.Popen, sig: signal.Signals) -> None:
    """Send `sig` to the driver's process group and every process it started (Ray's may leave the group)."""
    pids = _process_tree(driver.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _kill_everything(driver: subprocess.Popen) -> None:
    _signal_everything(driver, signal.SIGKILL)
    driver.wait()


def _crash_ready(trials_dir: Path, ledger: TrialLedger) -> bool:
    """A tuning trial finished (in the ledger) and another is midway with a checkpoint on record."""
    recorded = ledger.entries()
    _, midway = _snapshot(trials_dir)
    return any(e["stage"] == "tune" for e in recorded.values()) and bool(set(midway) - set(recorded))


def _crash_when_ready(driver: subprocess.Popen, trials_dir: Path, ledger: TrialLedger, delay: float,
                      timeout: float) -> int | None:
    """SIGKILL the whole study at a random moment (`delay` after the crash state first appears) at
    which the crash state holds. The study is frozen (SIGSTOP) while the state is checked, so the
    check and the crash see the same files: on a fast machine the midway trial may otherwise finish
    between the two. When the state has passed, the study thaws and the wait goes on. Returns the
    driver's exit code if it ended by itself first."""
    deadline = time.monotonic() + timeout
    ready_since: float | None = None
    while time.monotonic() < deadline and driver.poll() is None:
        if ready_since is None and _crash_ready(trials_dir, ledger):
            ready_since = time.monotonic()
        if ready_since is not None and time.monotonic() - ready_since >= delay:
            _signal_everything(driver, signal.SIGSTOP)
            if _crash_ready(trials_dir, ledger):
                break
            _signal_everything(driver, signal.SIGCONT)
        time.sleep(0.1)
    exit_code = driver.poll()
    _kill_everything(driver)
    return exit_code


@pytest.fixture(scope="module")
def study(ray_session: str, tiny_study, tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("e2e") / "study"
    log = out.parent / "driver1.log"
    # Its own local Ray (no --address), so the kill takes Ray and the workers down with the driver.
    cmd = [sys.executable, str(REPO / "studies" / "context_ablation.py"), "--preset", "footage", "--out", str(out),
           "--no-report", "--verbose", "0", "--allow-underpowered", *[a for kv in tiny_study for a in ("--set", kv)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    seed = int(os.environ.get("LIFT_E2E_KILL_SEED", time.time_ns() % 1000))
    delay = random.Random(seed).uniform(0.0, 1.5)
    ledger = TrialLedger(out / LEDGER_DIR)
    with open(log, "w") as fh:
        driver = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        exit_code = _crash_when_ready(driver, out / "trials", ledger, delay, timeout=400)
    assert exit_code is None, f"the first driver ended by itself (exit {exit_code}):\n{log.read_text()[-4000:]}"
    recorded = ledger.entries()
    finished = {tid: Path(e["path"]) for tid, e in recorded.items() if e["stage"] == "tune"}
    _, midway = _snapshot(out / "trials")  # the snapshot as the crash left it
    midway = {tid: path for tid, path in midway.items() if tid not in recorded}
    assert finished and midway, (f"no finished and checkpointed trials in time (kill seed {seed}):\n"
                                 f"{log.read_text()[-4000:]}")
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
    assert set(test["arm"]) == {"window=3", "window=7,offset=1", "baseline=repeat", "baseline=blend"}
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
