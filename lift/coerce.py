"""YAML and command-line values to annotated Python types, for the training and study configs.

``coerce(value, tp, key)`` accepts what a YAML file or a ``--set key=value`` flag can hold for the
types the configs use: ``bool`` (true/false, yes/no, on/off, 1/0), ``int`` (no booleans, integral
floats), finite ``float``, ``str``, ``Literal`` choices, ``list[...]`` (also ``128,128`` and
``128x128``) and optional (``X | None``, with ``none``/``null``). Anything else is a
:class:`CoercionError` naming the key, the value and what was expected.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Callable, Literal


class CoercionError(ValueError):
    """A value does not fit its annotated type; the message names the key, the value and the type."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise CoercionError naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(tp), key)
    if origin is Literal:
        return _coerce_literal(value, typing.get_args(tp), key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        return _coerce_list(value, item_tp, key)
    scalar = _SCALARS.get(tp)
    if scalar is None:
        raise CoercionError(f"{key}: unsupported type {tp!r}")
    return scalar(value, key)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in ("none", "null"))


def _coerce_union(value: Any, args: tuple[Any, ...], key: str) -> Any:
    """The first member type that accepts the value (None for null where the union allows it)."""
    if _is_null(value) and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(value, arg, key)
        except CoercionError:
            continue
    allowed = " or ".join(_type_name(a) for a in args)
    raise CoercionError(f"{key}: got {value!r}; expected {allowed}")


def _coerce_literal(value: Any, choices: tuple[Any, ...], key: str) -> Any:
    if value not in choices:
        raise CoercionError(f"{key}: got {value!r}; allowed values are {', '.join(map(repr, choices))}")
    return value


def _coerce_list(value: Any, item_tp: Any, key: str) -> list[Any]:
    """A list, a tuple or the CLI's text forms ``128,128`` / ``128x128``; each item coerced."""
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()] if value else []
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise CoercionError(f"{key}: got {value!r}; expected a list of {_type_name(item_tp)}")
    return [coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]


_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


def _coerce_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE_WORDS + _FALSE_WORDS:
        return value.lower() in _TRUE_WORDS
    raise CoercionError(f"{key}: got {value!r}; expected true or false")


def _coerce_int(value: Any, key: str) -> int:
    # bool is an int subclass, but `true` for a count is a mistake, not 1.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise CoercionError(f"{key}: got {value!r}; expected an integer")


def _coerce_float(value: Any, key: str) -> float:
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise CoercionError(f"{key}: got {value!r}; expected a number")
    # No setting means anything at inf or NaN: they only surface later as NaN weights.
    if not math.isfinite(number):
        raise CoercionError(f"{key}: got {value!r}; expected a finite number")
    return number


def _coerce_str(value: Any, key: str) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise CoercionError(f"{key}: got {value!r}; expected a string")


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _coerce_bool, int: _coerce_int, float: _coerce_float, str: _coerce_str,
}
