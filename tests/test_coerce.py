"""lift.coerce: YAML/CLI values to the configs' annotated types, refusals naming key and value."""

from __future__ import annotations

from typing import Literal

import pytest

from lift.coerce import CoercionError, coerce


@pytest.mark.parametrize("value, tp, expected", [
    ("yes", bool, True), ("Off", bool, False), (True, bool, True),
    ("7", int, 7), (8.0, int, 8),
    ("3e-4", float, 3e-4), (2, float, 2.0),
    (15, str, "15"),
    ("128x96", list[int], [128, 96]), ("1,2", list[int], [1, 2]), ((1, 2), list[int], [1, 2]),
    ("null", int | None, None), (None, list[int] | None, None), ("5", int | None, 5),
    ("bf16", Literal["auto", "bf16"], "bf16"),
])
def test_accepted_values(value, tp, expected) -> None:
    out = coerce(value, tp, "k")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("value, tp, message", [
    (True, int, "k: got True; expected an integer"),
    (2.5, int, "k: got 2.5; expected an integer"),
    ("maybe", bool, "k: got 'maybe'; expected true or false"),
    ("inf", float, "k: got 'inf'; expected a finite number"),
    ("x", float, "k: got 'x'; expected a number"),
    ([1], str, "k: got [1]; expected a string"),
    (3, list[int], "k: got 3; expected a list of int"),
    (["1", "b"], list[int], "k[1]: got 'b'; expected an integer"),
    ("fp8", Literal["auto", "bf16"], "k: got 'fp8'; allowed values are 'auto', 'bf16'"),
    ("x", int | None, "k: got 'x'; expected int or NoneType"),
    (1, dict, "k: unsupported type"),
])
def test_refusals_name_the_key_and_the_value(value, tp, message) -> None:
    with pytest.raises(CoercionError) as err:
        coerce(value, tp, "k")
    assert str(err.value).startswith(message)
