"""lift.data.window: evaluation sample ids (the window's geometry is lift.window's, tests/test_window.py)."""

from __future__ import annotations

from lift.data.window import sample_id


def test_sample_id_is_stable_and_independent_of_the_window() -> None:
    assert sample_id("ucf101", "v_ApplyEyeMakeup_g01_c01", 7) == "ucf101/v_ApplyEyeMakeup_g01_c01/000007"
    # The same target is the same sample whatever window or offset evaluates it: arms pair by it.
    assert sample_id("x4k", "scene", 123456) != sample_id("x4k", "scene", 12345)
