"""Ablation arms: their readable names, and the designs that enumerate them.

An arm is a set of LIFT config values (``{"data.window": 15, "loss.lpips": 0.0}``). Its **key** is
the readable, stable name every per-sample table carries in its ``arm`` column::

    window=3                                   the RIFE triplet: no references, so no offset
    window=15,offset=2                         data.window and data.temporal_offset, shortened
    window=15,offset=1,loss.lpips=0            any other factor under its dotted config key
    baseline=repeat                            a baseline (no network)

Rules, so that a name is the same wherever and whenever it is built: window first, offset second
(left out for window 3, whose offset means nothing), then ``baseline``, then the other keys in
alphabetical order; values as ``format_value`` writes them (integers as integers, floats in at most
15 significant digits without trailing zeros, so ``0.0`` is ``0`` and ``0.1 + 0.2`` is ``0.3``;
booleans as ``true``/``false``; ``null``). ``parse_key(arm_key(values)) == values`` for values the
name can hold (scalars, no offset beside window 3) and ``arm_key(parse_key(name)) == name`` for
every name ``arm_key`` wrote.

The designs (:func:`grid`, :func:`one_at_a_time`) turn factors (config key -> levels) into arms.
This module is the one home of the names: :func:`arm_key` writes them and :func:`parse_key` /
:func:`split_key` read them, for training, evaluation, the study and the report alike. The rule
"window 3 ignores the offset" is :func:`lift.window.ignores_offset`; this module imports nothing
else from ``lift``, so that every layer can use it.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from lift.window import CONTROL_OFFSET, ignores_offset

WINDOW_KEY = "data.window"
OFFSET_KEY = "data.temporal_offset"
BASELINE_KEY = "baseline"
# The config keys with a short name in arm keys (the PICO's two factors).
SHORT_NAMES = {WINDOW_KEY: "window", OFFSET_KEY: "offset"}
_LONG_NAMES = {short: key for key, short in SHORT_NAMES.items()}

_INT = re.compile(r"[+-]?\d+")
_SEPARATORS = (",", "=")
_EXAMPLES = "'window=15,offset=2', 'window=15,offset=1,loss.lpips=0' or 'baseline=repeat'"


class ArmNameError(ValueError):
    """An arm name or value cannot be written or read; the message names it and what is expected."""


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

def format_value(value: Any) -> str:
    """The stable text of one factor value (see the module doc); ArmNameError if a name cannot hold it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ArmNameError(f"arm value {value!r}: expected a finite number")
        # 15 significant digits drop binary noise (0.1 + 0.2 -> 0.3) and keep every decimal a
        # YAML file can state; 0.0 and -0.0 are both 0.
        text = format(value + 0.0, ".15g")
        return "0" if text == "-0" else text
    if isinstance(value, str):
        if (not value or value != value.strip() or any(s in value for s in _SEPARATORS)
                or parse_value(value) != value):
            raise ArmNameError(f"arm value {value!r}: a text value must be non-empty, without ',' or '=' or "
                               "surrounding spaces, and must not read as a number, true/false or null")
        return value
    raise ArmNameError(f"arm value {value!r} ({type(value).__name__}): expected a number, true/false, null or text")


def parse_value(text: str) -> Any:
    """The value `format_value` wrote: bool, None, int, float, else the text itself."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _INT.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

def _name_order(name: str) -> tuple[int, str]:
    return ({"window": 0, "offset": 1, BASELINE_KEY: 2}.get(name, 3), name)


def canonical(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with the offset of a window-3 arm set to CONTROL_OFFSET (it means nothing there),
    so that arms differing only in it compare equal."""
    out = dict(values)
    if ignores_offset(out.get(WINDOW_KEY)) and OFFSET_KEY in out:
        out[OFFSET_KEY] = CONTROL_OFFSET
    return out


def _named(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values an arm's name shows: all but the offset of a window-3 arm."""
    return {k: v for k, v in values.items() if not (k == OFFSET_KEY and ignores_offset(values.get(WINDOW_KEY)))}


def arm_key(values: Mapping[str, Any]) -> str:
    """The readable name of the arm with these config values (``{"data.window": 15, ...}``)."""
    if not values:
        raise ArmNameError("an arm needs at least one value to be named")
    pairs: dict[str, str] = {}
    for key, value in _named(values).items():
        name = SHORT_NAMES.get(key, key)
        if not name or name != name.strip() or any(s in name for s in _SEPARATORS):
            raise ArmNameError(f"arm key {key!r}: expected a config key without ',' or '=' or surrounding spaces")
        if name in _LONG_NAMES and key not in SHORT_NAMES:
            raise ArmNameError(f"arm key {key!r}: write it as {_LONG_NAMES[name]!r}")
        pairs[name] = format_value(value)
    return ",".join(f"{name}={pairs[name]}" for name in sorted(pairs, key=_name_order))


def baseline_key(name: str) -> str:
    """``baseline=<name>``: the arm of a baseline (no network)."""
    return arm_key({BASELINE_KEY: name})


def split_key(arm: str) -> dict[str, str]:
    """The key=value pairs of an arm name as written (``window=15,offset=2`` -> ``{"window": "15",
    "offset": "2"}``); ArmNameError naming the arm if it is not such a list."""
    pairs: dict[str, str] = {}
    for part in str(arm).split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value or "=" in value:
            raise ArmNameError(f"arm {arm!r} is malformed: expected comma-separated key=value pairs "
                               f"such as {_EXAMPLES}")
        if name in pairs:
            raise ArmNameError(f"arm {arm!r} is malformed: {name!r} appears twice")
        pairs[name] = value
    return pairs


def parse_key(arm: str) -> dict[str, Any]:
    """The config values an arm name stands for (``window=15,offset=2`` -> ``{"data.window": 15,
    "data.temporal_offset": 2}``; ``baseline=repeat`` -> ``{"baseline": "repeat"}``)."""
    return {_LONG_NAMES.get(name, name): parse_value(text) for name, text in split_key(arm).items()}


def arm_slug(values: Mapping[str, Any]) -> str:
    """A file-system and Ray-experiment-name safe, stable form of the arm: ``w3``, ``w15_o1``,
    ``w15_o1_loss.lpips-0``."""
    arm_key(values)  # the same checks as the name
    named = _named(values)
    parts = []
    if WINDOW_KEY in named:
        parts.append(f"w{format_value(named.pop(WINDOW_KEY))}")
    if OFFSET_KEY in named:
        parts.append(f"o{format_value(named.pop(OFFSET_KEY))}")
    parts += [f"{key}-{format_value(named[key])}" for key in factor_order(named)]
    return re.sub(r"[^A-Za-z0-9._-]", "_", "_".join(parts))


# ---------------------------------------------------------------------------------------------
# Designs: factors (config key -> levels) -> arms (config key -> value)
# ---------------------------------------------------------------------------------------------

def factor_order(keys: Iterable[str]) -> list[str]:
    """Window, offset, then the other factors alphabetically: the order arms are enumerated in."""
    return sorted(keys, key=lambda k: _name_order(SHORT_NAMES.get(k, k)))


def _unique(arms: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for arm in map(canonical, arms):
        if arm not in out:
            out.append(arm)
    return out


def grid(factors: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the levels, factors in `factor_order`, each factor's levels in the
    order given; window-3 arms that differ only in the offset collapse to one."""
    keys = factor_order(factors)
    return _unique(dict(zip(keys, combo)) for combo in itertools.product(*(factors[k] for k in keys)))


def one_at_a_time(factors: Mapping[str, Sequence[Any]], base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The base arm, then for each factor (in `factor_order`) each of its other levels with only
    that factor changed: linear, not exponential, in the number of factors. Changes that collapse
    onto an arm already listed (an offset change of a window-3 base) are dropped."""
    missing = sorted(set(factors) - set(base))
    if missing:
        raise ArmNameError(f"one_at_a_time: the base arm has no value for {', '.join(missing)}")
    base_arm = {k: base[k] for k in factor_order(factors)}
    changed = ({**base_arm, key: level} for key in factor_order(factors) for level in factors[key]
               if level != base_arm[key])
    return _unique(itertools.chain([base_arm], changed))


def changed_factors(arm: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """The factors in which `arm` differs from `base` (both canonical), in `factor_order`."""
    arm, base = canonical(arm), canonical(base)
    return [k for k in factor_order(set(arm) | set(base)) if arm.get(k) != base.get(k)]


# ---------------------------------------------------------------------------------------------
# An arm of a study
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    """One arm of a study (lift.tune.study_config.arms_of): a value for every factor of the study
    (window 3 with offset 1: its offset means nothing)."""
    index: int
    values: tuple[tuple[str, Any], ...]
    # The factors its name shows: window and offset always, other factors where the study has
    # more than one level (a one-level factor is a constant of the study).
    named: tuple[str, ...] = (WINDOW_KEY, OFFSET_KEY)
    # The factors in which it differs from the study's base arm (none: it is the base arm).
    changes: tuple[str, ...] = ()

    @property
    def factors(self) -> dict[str, Any]:
        return dict(self.values)

    @property
    def window(self) -> int:
        return int(self.factors[WINDOW_KEY])

    @property
    def temporal_offset(self) -> int:
        return int(self.factors[OFFSET_KEY])

    @property
    def is_base(self) -> bool:
        return not self.changes

    def _named_values(self) -> dict[str, Any]:
        return {k: v for k, v in self.values if k in self.named}

    @property
    def key(self) -> str:
        """Readable name (lift.arms.arm_key), e.g. ``window=15,offset=1,loss.lpips=0``."""
        return arm_key(self._named_values())

    @property
    def slug(self) -> str:
        """File-system and Ray-experiment-name friendly form of the key: ``w3``, ``w15_o1``, ..."""
        return arm_slug(self._named_values())


__all__ = [
    "WINDOW_KEY", "OFFSET_KEY", "BASELINE_KEY", "SHORT_NAMES", "ArmNameError",
    "format_value", "parse_value", "canonical", "arm_key", "baseline_key", "split_key", "parse_key", "arm_slug",
    "factor_order", "grid", "one_at_a_time", "changed_factors", "Arm",
]
