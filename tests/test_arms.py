"""Arm names (build, parse, formatting, slugs) and the two designs that enumerate arms."""

from __future__ import annotations

import pytest

from lift.arms import (
    OFFSET_KEY,
    WINDOW_KEY,
    ArmNameError,
    arm_key,
    arm_slug,
    baseline_key,
    changed_factors,
    format_value,
    grid,
    one_at_a_time,
    parse_key,
    split_key,
)
from lift.evaluate import baseline_arm
from lift.report.tables import ReportError, parse_arm


@pytest.mark.parametrize("values, name", [
    ({WINDOW_KEY: 3}, "window=3"),
    ({WINDOW_KEY: 3, OFFSET_KEY: 4}, "window=3"),  # window 3 ignores the offset
    ({WINDOW_KEY: 15, OFFSET_KEY: 2}, "window=15,offset=2"),
    ({"loss.lpips": 0.0, OFFSET_KEY: 1, WINDOW_KEY: 15}, "window=15,offset=1,loss.lpips=0"),
    ({"model.quadratic_extrapolation": False, "loss.census": 0.1, WINDOW_KEY: 7, OFFSET_KEY: 1},
     "window=7,offset=1,loss.census=0.1,model.quadratic_extrapolation=false"),
    ({"baseline": "repeat"}, "baseline=repeat"),
    ({"optim.scheduler": "constant", "data.eval_crop": None}, "data.eval_crop=null,optim.scheduler=constant"),
])
def test_names_are_readable_and_in_a_fixed_order(values, name) -> None:
    assert arm_key(values) == name
    assert arm_key(parse_key(name)) == name


@pytest.mark.parametrize("values", [
    {WINDOW_KEY: 15, OFFSET_KEY: 2},
    {WINDOW_KEY: 3},
    {WINDOW_KEY: 15, OFFSET_KEY: 1, "loss.lpips": 0.0, "loss.census": 1e-5, "optim.lr": 3e-4},
    {WINDOW_KEY: 15, OFFSET_KEY: 1, "model.quadratic_extrapolation": True, "model.block_depth": 2},
    {"baseline": "blend"},
    {"optim.scheduler": "cosine", "data.eval_crop": None, "loss.lpips": -2.5},
])
def test_parse_undoes_build(values) -> None:
    parsed = parse_key(arm_key(values))
    assert parsed == values
    # Types come back too: integers stay integers, booleans booleans (an integral float reads
    # back as an equal integer: the study coerces levels to the config field's type).
    assert all(type(parsed[k]) is type(v) for k, v in values.items() if not isinstance(v, float))


@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (0.1, "0.1"), (0.1 + 0.2, "0.3"), (1e-5, "1e-05"), (3e-4, "0.0003"),
    (2.5e10, "25000000000"), (7, "7"), (True, "true"), (False, "false"), (None, "null"), ("cosine", "cosine"),
])
def test_values_are_formatted_stably(value, text) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "a,b", "a=b", "", " x", "1.5", "true", [32, 32]])
def test_values_a_name_cannot_hold_are_refused(value) -> None:
    with pytest.raises(ArmNameError, match="arm value"):
        format_value(value)


@pytest.mark.parametrize("name", ["window15", "window=15,", "=3", "window=", "window=15,window=7", "a=b=c"])
def test_malformed_names_are_refused(name) -> None:
    with pytest.raises(ArmNameError, match="malformed"):
        split_key(name)


def test_short_names_are_not_config_keys() -> None:
    with pytest.raises(ArmNameError, match="data.window"):
        arm_key({"window": 15})


def test_slugs_are_file_system_safe_and_keep_the_pure_window_forms() -> None:
    assert arm_slug({WINDOW_KEY: 3, OFFSET_KEY: 2}) == "w3"
    assert arm_slug({WINDOW_KEY: 15, OFFSET_KEY: 1}) == "w15_o1"
    assert arm_slug({WINDOW_KEY: 15, OFFSET_KEY: 1, "loss.lpips": 0.0, "model.quadratic_extrapolation": False}) \
        == "w15_o1_loss.lpips-0_model.quadratic_extrapolation-false"
    assert arm_slug({"baseline": "repeat"}) == "baseline-repeat"


def test_the_old_entry_points_delegate() -> None:
    # evaluate and train name a run by its window and offset through arm_key (evaluate.arm_key is gone).
    assert arm_key({WINDOW_KEY: 3, OFFSET_KEY: 2}) == arm_key({WINDOW_KEY: 3, OFFSET_KEY: 1}) == "window=3"
    assert arm_key({WINDOW_KEY: 15, OFFSET_KEY: 2}) == "window=15,offset=2"
    assert baseline_arm("repeat") == baseline_key("repeat") == "baseline=repeat"
    assert parse_arm("window=15,offset=1,loss.lpips=0") == {"window": "15", "offset": "1", "loss.lpips": "0"}
    with pytest.raises(ReportError, match=r"table.csv: arm 'window3' is malformed"):
        parse_arm("window3", "table.csv")


def test_grid_is_every_combination_with_window_3_once() -> None:
    arms = grid({"loss.lpips": [0.1, 0.0], OFFSET_KEY: [1, 2], WINDOW_KEY: [3, 15]})
    assert [arm_key(a) for a in arms] == [
        "window=3,loss.lpips=0.1", "window=3,loss.lpips=0",
        "window=15,offset=1,loss.lpips=0.1", "window=15,offset=1,loss.lpips=0",
        "window=15,offset=2,loss.lpips=0.1", "window=15,offset=2,loss.lpips=0",
    ]


def test_one_at_a_time_changes_one_factor_per_arm() -> None:
    factors = {WINDOW_KEY: [15, 3], OFFSET_KEY: [1, 2], "loss.lpips": [0.1, 0.0], "loss.census": [0.1, 0.0],
               "model.quadratic_extrapolation": [True, False]}
    base = {k: v[0] for k, v in factors.items()}
    arms = one_at_a_time(factors, base)
    assert len(arms) == 1 + 5  # linear in the number of factors: base + one change each
    assert arms[0] == base and [changed_factors(a, base) for a in arms[1:]] == [
        [WINDOW_KEY], [OFFSET_KEY], ["loss.census"], ["loss.lpips"], ["model.quadratic_extrapolation"]]
    assert arm_key(arms[1]) == "window=3,loss.census=0.1,loss.lpips=0.1,model.quadratic_extrapolation=true"


def test_one_at_a_time_drops_offset_changes_of_a_window_3_base() -> None:
    arms = one_at_a_time({WINDOW_KEY: [3, 15], OFFSET_KEY: [1, 2, 4]}, {WINDOW_KEY: 3, OFFSET_KEY: 1})
    assert [arm_key(a) for a in arms] == ["window=3", "window=15,offset=1"]
    with pytest.raises(ArmNameError, match="loss.lpips"):
        one_at_a_time({"loss.lpips": [0.0, 0.1]}, {})
