"""lift.report.render: the report folder (report.md, results.json, tables/*.csv|json) and its cell formats.

The analysis is of the synthetic window study of conftest (build_study), without plots (tests/report/
test_plots.py draws them).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lift.report import analyse, load_study
from lift.report.render import fmt, fmt_p, md_table, write_report


def _strict(text: str) -> object:
    """json.loads that refuses NaN/Infinity tokens, as a strict JSON parser would."""
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_write_report_writes_markdown_results_and_tables_with_nan_as_null(study_dir, tmp_path, options):
    analysis = analyse(load_study([study_dir]), options())
    analysis.results["test_nan"] = [float("nan"), float("inf"), 1.5]
    analysis.tables["arms"].loc[0, "psnr_mean"] = np.nan
    written = write_report(analysis, tmp_path / "r", make_plots=False)

    assert written == {"results": tmp_path / "r" / "results.json", "report": tmp_path / "r" / "report.md"}
    results = _strict(written["results"].read_text())
    assert results["test_nan"] == [None, None, 1.5] and results["plots"] == {}
    first = results["comparisons"][0]
    assert (first["treatment"], first["control"], first["family"]) == ("window=15,offset=2", "window=3", "primary")
    arms = _strict((tmp_path / "r" / "tables" / "arms.json").read_text())
    assert arms[0]["psnr_mean"] is None
    csv = pd.read_csv(tmp_path / "r" / "tables" / "arms.csv")
    assert list(csv["arm"]) == list(analysis.tables["arms"]["arm"]) and math.isnan(csv.loc[0, "psnr_mean"])
    md = written["report"].read_text()
    assert md.startswith("#") and "window=15,offset=2" in md and "window=3" in md
    assert "![" not in md  # no plots were drawn, none is linked
    assert not list((tmp_path / "r").rglob("*.tmp*"))  # atomic writes leave no temporaries


def test_cells_format_missing_and_non_finite_values_as_a_dash():
    assert [fmt(v) for v in (None, float("nan"), float("inf"), True, np.int64(7), 0.123456, "x")] == \
        ["–", "–", "–", "yes", "7", "0.1235", "x"]
    assert [fmt_p(p) for p in (None, float("nan"), 0.0001234, 0.04567, "0.1")] == ["–", "–", "1.23e-04", "0.0457", "–"]
    table = md_table(["arm", "PSNR"], [["a|b", 30.123456], ["c", None]])
    assert table.splitlines() == ["| arm | PSNR |", "|---|---|", "| a\\|b | 30.12 |", "| c | – |"]


@pytest.mark.parametrize("digits", [2, 6])
def test_fmt_keeps_the_requested_significant_digits(digits):
    assert fmt(math.pi, digits) == f"{math.pi:.{digits}g}"
