"""Fixtures of the study tests: a toy study run as its own driver and killed whole (a power cut)
at a random moment after its ledger records a finished trial and Tune's snapshot shows another
one midway, with a checkpoint (tests/tune/test_study_e2e.py, test_study_folder_e2e.py)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ray import tune

from lift.tune.ledger import LEDGER_DIR, TrialLedger

REPO = Path(__file__).resolve().parents[2]


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


def crash_study(out: Path, tiny_study: tuple[str, ...]) -> dict[str, Any]:
    """Run the toy study into `out` with `studies/context_ablation.py` as its own driver with its own
    local Ray (no --address, so the kill takes Ray and the workers down with the driver), and kill
    all of it once the crash state holds. Returns the ledger's entries and the midway trials as
    the crash left them, the kill seed and the driver's log."""
    log = out.parent / f"{out.name}.driver1.log"
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
    _, midway = _snapshot(out / "trials")  # the snapshot as the crash left it
    midway = {tid: path for tid, path in midway.items() if tid not in recorded}
    assert any(e["stage"] == "tune" for e in recorded.values()) and midway, (
        f"no finished and checkpointed trials in time (kill seed {seed}):\n{log.read_text()[-4000:]}")
    return {"recorded": recorded, "midway": midway, "kill_seed": seed, "log": log}


@pytest.fixture(scope="session")
def crashed_study():
    """`crash_study` for tests (conftest modules are not importable by name)."""
    return crash_study
