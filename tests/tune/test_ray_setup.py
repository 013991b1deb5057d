"""Resource checks against the real (2-CPU, no GPU) test cluster, and the dashboard hint."""

from __future__ import annotations

import pytest

from lift.tune.ray_setup import RaySession, check_trial_resources, connect
from lift.tune.study_config import StudyError


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
