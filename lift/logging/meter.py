"""Running figures of a training loop (torchvision's MetricLogger idea, in a few lines).

    meter = Meter()
    meter.update(loss=0.31, samples=4)
    meter.mean("loss"), meter.total("samples"), meter.count("loss")
"""

from __future__ import annotations

import math
from collections import defaultdict


class Meter:
    """Sums and counts of named values; `update` adds one observation of each value it is given."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def update(self, **values: float) -> None:
        for name, value in values.items():
            self._sums[name] += float(value)
            self._counts[name] += 1

    def total(self, name: str) -> float:
        return self._sums.get(name, 0.0)

    def count(self, name: str) -> int:
        return self._counts.get(name, 0)

    def mean(self, name: str) -> float:
        """The mean of `name`'s observations (NaN when there are none)."""
        n = self.count(name)
        return self.total(name) / n if n else math.nan

    def ratio(self, numerator: str, denominator: str) -> float:
        """total(numerator) / total(denominator) (NaN when the denominator is not positive): a rate
        such as samples per second."""
        den = self.total(denominator)
        return self.total(numerator) / den if den > 0 else math.nan

    def names(self, prefix: str = "") -> list[str]:
        """Names seen so far that start with `prefix`, in first-seen order."""
        return [name for name in self._sums if name.startswith(prefix)]

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()
