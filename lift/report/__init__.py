"""The significance report of LIFT studies (``python -m lift.report``, STATISTICS.md version 2).

Library use: :mod:`lift.report.decision` has the decision on arrays (also run by the calibration);
:mod:`lift.report.stats` has the descriptive tests on plain arrays; :func:`load_study` reads and
validates per-sample tables; :mod:`lift.report.plan` decides which arms are compared,
:mod:`lift.report.summaries` makes the descriptive tables, :func:`analyse` runs every comparison; :func:`write_report` writes
report.md, results.json, tables and plots; :func:`make_report` does all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lift.report.analysis import Analysis, analyse
from lift.report.decision import VERDICTS, Family, decide_primary, seed_cluster_test, verdict
from lift.report.plan import Comparison, ReportOptions, plan_comparisons
from lift.report.render import write_report
from lift.report.stats import PSNR_CEILING_DB
from lift.report.tables import PRIMARY_METRICS, ReportError, Study, combine_tables, load_study


def make_report(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    options: ReportOptions | None = None,
    metrics: Sequence[str] = PRIMARY_METRICS,
    psnr_cap: float = PSNR_CEILING_DB,
    make_plots: bool = True,
) -> tuple[Analysis, dict[str, Path]]:
    """Read the tables under ``inputs``, test, and write the report folder ``out_dir``."""

    study = load_study(inputs, metrics=metrics, psnr_cap=psnr_cap)
    analysis = analyse(study, options)
    return analysis, write_report(analysis, Path(out_dir), make_plots=make_plots)


__all__ = [
    "Analysis", "Comparison", "Family", "PSNR_CEILING_DB", "PRIMARY_METRICS", "ReportError", "ReportOptions", "Study",
    "VERDICTS", "analyse", "combine_tables", "decide_primary", "load_study", "make_report", "plan_comparisons",
    "seed_cluster_test", "verdict",
]
