"""Meter: sums and counts of named figures, means and rates from them."""

from __future__ import annotations

import math

from lift.logging import Meter


def test_means_totals_counts_and_rates() -> None:
    m = Meter()
    m.update(loss=1.0, samples=4, time=0.5)
    m.update(loss=3.0, samples=4, time=1.5)
    m.update(samples=2)  # a micro-batch with a non-finite loss: samples only
    assert (m.mean("loss"), m.count("loss"), m.total("samples")) == (2.0, 2, 10.0)
    assert m.ratio("samples", "time") == 5.0
    assert m.names() == ["loss", "samples", "time"]


def test_missing_figures_are_nan_not_errors_and_reset_clears() -> None:
    m = Meter()
    assert math.isnan(m.mean("loss")) and m.count("loss") == 0 and m.total("loss") == 0.0
    m.update(data=1.0, time=0.0)
    assert math.isnan(m.ratio("data", "time"))  # no time elapsed: no rate
    m.update(**{"comp/census": 0.2, "comp/teacher": 0.4})
    assert m.names("comp/") == ["comp/census", "comp/teacher"]
    m.reset()
    assert m.names() == [] and m.count("data") == 0
