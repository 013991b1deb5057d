"""Resource checks against the real (2-CPU, no GPU) test cluster, the dashboard hint, and joining
only on request (a closed port fails fast; a cluster on the machine is not joined by default)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lift.tune.ray_setup import (JOIN_PROBE_TIMEOUT_S, JoinTarget, RaySession, check_trial_resources, connect,
                                 head_endpoint, join_target, probe_head)
from lift.tune.study_config import StudyError

REPO = Path(__file__).resolve().parents[2]


def test_capacity_counts_trial_slots(ray_session: str) -> None:
    assert check_trial_resources(1, 0).slots == 2
    assert check_trial_resources(0.5, 0).slots == 4
    assert check_trial_resources(2, 0).slots == 1


def test_gpu_request_on_a_cluster_without_gpus_fails_fast(ray_session: str) -> None:
    with pytest.raises(StudyError, match=r"--gpus-per-trial 0.25: the Ray cluster has no GPU"):
        check_trial_resources(1, 0.25)


def test_trial_larger_than_any_node_fails_fast(ray_session: str) -> None:
    with pytest.raises(StudyError, match=r"--cpus-per-trial 3 .*largest node: 2 CPUs"):
        check_trial_resources(3, 0)


def test_connect_reuses_the_callers_ray_and_leaves_it_running(ray_session: str) -> None:
    session = connect()
    assert session.owned_by_caller and not session.started_here


def test_dashboard_hint_names_the_token_file() -> None:
    text = RaySession(True, "127.0.0.1:6379", "127.0.0.1:8265").describe()
    assert "http://127.0.0.1:8265" in text and "~/.ray/auth_token" in text


# ---- joining: explicit only, and fast to fail ------------------------------------------------------

def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_fails_within_seconds_naming_the_flag() -> None:
    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(StudyError, match=rf"^--address 127.0.0.1:{port}: no Ray head node answers at "
                                         rf"127.0.0.1:{port} \(Connection refused"):
        probe_head(join_target(f"127.0.0.1:{port}"))
    assert time.monotonic() - t0 < JOIN_PROBE_TIMEOUT_S


def test_ray_address_from_the_environment_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "garbage")
    target = join_target(None)
    with pytest.raises(StudyError, match=r"^RAY_ADDRESS=garbage \(environment variable\): expected HOST:PORT.*"
                                         r"unset RAY_ADDRESS to start a local Ray"):
        head_endpoint(target)
    assert join_target("10.0.0.5:6379") == JoinTarget("10.0.0.5:6379", "--address")  # the flag wins
    assert head_endpoint(JoinTarget("ray://10.0.0.5:10001", "--address")) == ("10.0.0.5", 10001)
    monkeypatch.setenv("RAY_ADDRESS", "")
    assert join_target(None) is None


CONNECT = """
import json, sys
from lift.tune.ray_setup import connect, disconnect
s = connect(include_dashboard=False, num_cpus=1)
print(json.dumps({"address": s.address, "started_here": s.started_here, "describe": s.describe()}))
disconnect(s)
"""


def _connect_in_subprocess(ray_tmp: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": str(ray_tmp), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-c", CONNECT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A Ray temp dir of the test's own (Ray's address file lives there); short: Ray puts sockets in it."""
    path = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_stale_address_file_does_not_stop_a_local_start(ray_tmp: Path) -> None:
    """A head node that died leaves Ray's address file behind; without --address the study starts its own Ray."""
    dead = f"127.0.0.1:{_closed_port()}"
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(dead)
    t0 = time.monotonic()
    got = _connect_in_subprocess(ray_tmp)
    assert got["started_here"] and got["address"] != dead and "a local Ray instance" in got["describe"]
    assert time.monotonic() - t0 < 90


def test_a_running_cluster_is_not_joined_without_an_address(ray_tmp: Path) -> None:
    ray_cli = Path(sys.executable).with_name("ray")
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    port = _closed_port()
    address_file = ray_tmp / "ray" / "ray_current_cluster"
    # --block in a process group of its own: the cluster's processes are that group, stopped by it
    # alone (`ray stop` would stop every Ray on the machine).
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--num-cpus=1", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not address_file.is_file() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert address_file.read_text().strip().endswith(f":{port}")
        got = _connect_in_subprocess(ray_tmp)
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
    assert got["started_here"] and not got["address"].endswith(f":{port}")
