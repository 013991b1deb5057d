"""Paired statistics on plain arrays of per-unit differences (see shared/design/STATISTICS.md).

The report's decision lives in :mod:`lift.report.decision` (per-cluster, seeds random); the functions
here give the descriptive tests and effect sizes it shows beside it, on the per-cluster differences.

Every function here takes plain arrays and returns plain numbers or small dataclasses, so other
studies can reuse them without the rest of the report. Conventions:

* ``direction`` is +1 when a higher metric value is better (PSNR, SSIM) and -1 when lower is
  better (LPIPS, EPE, warp error). It is applied in exactly one place, :func:`oriented`, so every
  test below is the one-sided "treatment is better" test on improvements ``d > 0``.
* The unit of inference is the video: samples (target frames) of one video are correlated, so the
  primary test runs on per-video mean improvements ``d_v``. The sample-level test is computed only
  to show how much it would overstate the evidence.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

from lift.report.decision import t_bounds, wilcoxon_greater

# Which way is better, per metric column of the per-sample table.
METRIC_DIRECTION: dict[str, int] = {
    "psnr": +1,
    "ssim": +1,
    "lpips": -1,
    "epe": -1,
    "epe_gt1": -1,
    "epe_gt3": -1,
    "warp_error": -1,
}

# PSNR is +inf when a prediction equals the target exactly (a baseline on a static shot). The
# infinite-PSNR policy, in one place: the per-sample tables keep what was measured (+inf), and the
# report caps when it reads them (:func:`cap_psnr`, called by lift.report.tables.combine_tables)
# before anything is averaged or differenced, and states the ceiling and the count. An inf would
# make every mean and difference involving it inf or NaN; 100 dB is far above any real
# interpolation result (8-bit rounding noise alone gives about 59 dB).
PSNR_CEILING_DB: float = 100.0

# Up to this many videos the sign-flip permutation test enumerates all 2**n sign patterns.
EXACT_PERMUTATION_MAX_VIDEOS: int = 16


def cap_psnr(psnr: np.ndarray | Sequence[float], cap: float = PSNR_CEILING_DB) -> tuple[np.ndarray, np.ndarray]:
    """The report's infinite-PSNR policy (see :data:`PSNR_CEILING_DB`): values above ``cap`` (+inf for
    identical frames) become ``cap``; NaN stays NaN. Returns (capped values, which were capped)."""
    values = np.asarray(psnr, dtype=float)
    over = values > cap
    return np.where(over, cap, values), over


def metric_direction(metric: str) -> int:
    """+1 if higher is better for ``metric``, -1 if lower is better."""
    try:
        return METRIC_DIRECTION[metric]
    except KeyError:
        raise ValueError(
            f"unknown metric {metric!r}: its direction is not defined; known metrics: {sorted(METRIC_DIRECTION)}"
        ) from None


def oriented(diff: np.ndarray | Sequence[float], direction: int) -> np.ndarray:
    """Turn raw differences (treatment - control) into improvements: positive means treatment is better."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    return np.asarray(diff, dtype=float) * direction


def video_means(values: np.ndarray | Sequence[float], video_ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``values`` per video. Returns (sorted unique video ids, per-video means, per-video counts)."""
    vals = np.asarray(values, dtype=float)
    vids = np.asarray(video_ids)
    if vals.shape != vids.shape or vals.ndim != 1:
        raise ValueError(f"values {vals.shape} and video_ids {vids.shape} must be 1-D and of equal length")
    uniq, inverse = np.unique(vids, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq))
    sums = np.bincount(inverse, weights=vals, minlength=len(uniq))
    return uniq, sums / counts, counts


def _finite_or_nan(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else float("nan")


def wilcoxon_p(d: np.ndarray | Sequence[float], alternative: str = "greater") -> float:
    """One-sided Wilcoxon signed-rank p-value on ``d`` (scipy's default method, through the decision's
    wrapper); 1 when no difference is non-zero (zero differences are dropped)."""
    arr = np.asarray(d, dtype=float)
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    return float(wilcoxon_greater(arr if alternative == "greater" else -arr))


def ttest_p(d: np.ndarray | Sequence[float], alternative: str = "greater") -> float:
    """One-sample t-test of mean(d) = 0 (the paired t-test on the per-video differences)."""
    arr = np.asarray(d, dtype=float)
    if arr.size < 2 or np.std(arr) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _finite_or_nan(stats.ttest_1samp(arr, 0.0, alternative=alternative).pvalue)


@dataclass(frozen=True)
class PermutationResult:
    pvalue: float
    exact: bool
    n_resamples: int


def sign_flip_permutation(
    d: np.ndarray | Sequence[float],
    *,
    n_resamples: int = 10_000,
    exact_max_n: int = EXACT_PERMUTATION_MAX_VIDEOS,
    seed: int | np.random.Generator | None = 0,
) -> PermutationResult:
    """One-sided sign-flip permutation test of mean(d) > 0.

    Under H0 each per-video improvement is symmetric about zero, so flipping its sign is as likely
    as not. Exact (all 2**n patterns) for up to ``exact_max_n`` values, otherwise ``n_resamples``
    seeded random flips (scipy adds one to numerator and denominator, so p is never 0).
    """
    arr = np.asarray(d, dtype=float)
    if arr.size == 0 or not np.any(arr != 0):
        return PermutationResult(1.0, True, 1)
    if arr.size == 1:  # two sign patterns; scipy needs two observations
        return PermutationResult(0.5 if arr[0] > 0 else 1.0, True, 2)
    exact = arr.size <= exact_max_n
    resamples = 2 ** arr.size if exact else max(int(n_resamples), 1)
    res = stats.permutation_test(
        (arr,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="greater",
        rng=seed,
    )
    return PermutationResult(float(res.pvalue), exact, int(resamples))


def cohens_dz(d: np.ndarray | Sequence[float]) -> float:
    """Cohen's d_z: mean of the paired differences over their standard deviation (ddof=1)."""
    arr = np.asarray(d, dtype=float)
    if arr.size < 2:
        return float("nan")
    sd = float(np.std(arr, ddof=1))
    return float(np.mean(arr) / sd) if sd > 0 else float("nan")


def rank_biserial(d: np.ndarray | Sequence[float]) -> float:
    """Matched-pairs rank-biserial correlation (R+ - R-) / (R+ + R-), zeros dropped as in the Wilcoxon test.

    +1 when every video improves, -1 when every video gets worse.
    """
    arr = np.asarray(d, dtype=float)
    arr = arr[arr != 0]
    if arr.size == 0:
        return float("nan")
    ranks = stats.rankdata(np.abs(arr))
    r_plus = float(ranks[arr > 0].sum())
    r_minus = float(ranks[arr < 0].sum())
    return (r_plus - r_minus) / (r_plus + r_minus)


def t_interval(values: np.ndarray | Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t confidence interval (used for per-arm summaries over per-video means)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, float("nan"), float("nan")
    low, high = t_bounds(mean, float(stats.sem(arr)), arr.size - 1, level)
    return mean, float(low), float(high)
