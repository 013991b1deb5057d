"""Deterministic splits by video or group: stable across runs, machines and Python versions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _digest(salt: str, unit: str) -> str:
    return hashlib.sha1(f"{salt}:{unit}".encode()).hexdigest()


def assign_splits(units: Iterable[str], val_fraction: float, test_fraction: float,
                  salt: str = "lift-split") -> dict[str, str]:
    """Map each unit (video id, segment id or group) to "train", "val" or "test".

    Units are ranked by a hash of their id; the first ``round(n * test_fraction)`` go to test, the next
    ``round(n * val_fraction)`` to val, the rest to train. When there are enough units (one per split
    that has a nonzero fraction, plus one for training) every such split gets at least one unit, and
    training always keeps at least one.
    """
    ids = sorted(set(units))
    n = len(ids)
    n_test = int(n * test_fraction + 0.5)
    n_val = int(n * val_fraction + 0.5)
    wanted = (test_fraction > 0) + (val_fraction > 0)
    floor_test = floor_val = 0
    if n >= wanted + 1:
        floor_test, floor_val = int(test_fraction > 0), int(val_fraction > 0)
        n_test, n_val = max(n_test, floor_test), max(n_val, floor_val)
    while n_test + n_val > max(n - 1, 0):
        if n_val >= n_test and n_val > floor_val:
            n_val -= 1
        elif n_test > floor_test:
            n_test -= 1
        elif n_val > floor_val:
            n_val -= 1
        else:
            break
    ranked = sorted(ids, key=lambda u: _digest(salt, u))
    out = {u: "train" for u in ids}
    for u in ranked[:n_test]:
        out[u] = "test"
    for u in ranked[n_test:n_test + n_val]:
        out[u] = "val"
    return out


def holdout_groups(groups: Iterable[str], fraction: float, salt: str) -> set[str]:
    """A deterministic subset of `groups` (about `fraction` of them, at least one when there are two
    or more and fraction > 0, never all of them): validation groups carved out of a training list."""
    assignment = assign_splits(groups, fraction, 0.0, salt=salt)
    return {g for g, s in assignment.items() if s == "val"}
