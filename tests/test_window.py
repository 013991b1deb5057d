"""lift.window: the one home of the window's geometry, validation and "window 3 ignores the offset"."""

from __future__ import annotations

import pytest

from lift.config import ConfigError, load_config
from lift.model import LIFT
from lift.window import CONTROL_WINDOW, WindowError, WindowSpec, check_window, ignores_offset


@pytest.mark.parametrize("window", [3, 5, 15, 31])
def test_valid_windows_pass(window: int) -> None:
    assert check_window(window) == window
    assert WindowSpec(window).window == window


@pytest.mark.parametrize("window", [1, 2, 4, 14, 0, -3, 3.0, "15", True, None])
def test_invalid_window_is_refused_with_the_value_and_what_is_expected(window: object) -> None:
    with pytest.raises(WindowError, match=rf"^window: got {window!r}; expected an odd integer >= 3"):
        check_window(window)


def test_every_reader_of_a_window_gives_the_same_message() -> None:
    """Config, model and WindowSpec all ask check_window: one message, the reader's name in front."""
    expected = "got 4; expected an odd integer >= 3 (3 = two anchors + target, 15 = LIFT)"
    with pytest.raises(WindowError) as spec_err:
        WindowSpec(4)
    with pytest.raises(ConfigError) as cfg_err:
        load_config(None, ["data.window=4"])
    with pytest.raises(WindowError) as model_err:
        LIFT(window=4)
    assert str(spec_err.value) == f"window: {expected}"
    assert str(cfg_err.value) == f"data.window: {expected}"
    assert str(model_err.value) == f"LIFT: window: {expected}"


def test_offset_and_gap_are_checked() -> None:
    with pytest.raises(WindowError, match=r"temporal_offset: got 0; expected an integer >= 1"):
        WindowSpec(15, 0)
    with pytest.raises(WindowError, match=r"gap: got 1; expected an integer >= 2"):
        WindowSpec(3, 1, 1)


@pytest.mark.parametrize("window, refs", [(3, 0), (5, 1), (15, 6)])
def test_references_per_side(window: int, refs: int) -> None:
    spec = WindowSpec(window, temporal_offset=2)
    assert spec.refs_per_side == refs
    assert spec.reach == 2 * refs
    assert spec.num_inputs == 2 + 2 * refs == len(spec.input_offsets())
    assert spec.has_references == (refs > 0)


def test_window_three_ignores_the_offset() -> None:
    assert ignores_offset(CONTROL_WINDOW) and not ignores_offset(5) and not ignores_offset(15)
    # Geometry agrees: any offset gives the same frames for window 3, not for window 5.
    assert WindowSpec(3, 1).input_offsets() == WindowSpec(3, 7).input_offsets()
    assert WindowSpec(5, 1).input_offsets() != WindowSpec(5, 7).input_offsets()
