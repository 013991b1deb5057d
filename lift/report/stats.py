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
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

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

# PSNR is +inf when a prediction equals the target exactly (a baseline on a static shot). An inf
# would make every mean and difference involving it inf or NaN, so values above this ceiling are
# set to it before anything is averaged or differenced; 100 dB is far above any real
# interpolation result (8-bit rounding noise alone gives about 59 dB) and the count is reported.
PSNR_CEILING_DB: float = 100.0

# Up to this many videos the sign-flip permutation test enumerates all 2**n sign patterns.
EXACT_PERMUTATION_MAX_VIDEOS: int = 16


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


def cap_psnr(values: np.ndarray | Sequence[float], ceiling: float = PSNR_CEILING_DB) -> tuple[np.ndarray, int]:
    """Clip PSNR values (including +inf) at ``ceiling``; return the clipped array and how many were clipped."""
    arr = np.asarray(values, dtype=float)
    if np.isnan(arr).any():
        raise ValueError("PSNR values contain NaN; only +inf (identical frames) is allowed")
    over = arr > ceiling
    return np.where(over, ceiling, arr), int(over.sum())


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
    """One-sided Wilcoxon signed-rank p-value on ``d`` with scipy's default method.

    Zero differences are dropped (scipy's default ``zero_method="wilcox"``). With no non-zero
    difference there is no evidence either way and the p-value is 1.
    """
    arr = np.asarray(d, dtype=float)
    if arr.size == 0 or not np.any(arr != 0):
        return 1.0
    return float(stats.wilcoxon(arr, alternative=alternative).pvalue)


def min_wilcoxon_p(n_nonzero: int) -> float:
    """Smallest one-sided p-value the exact signed-rank test can give with ``n_nonzero`` differences.

    It is reached when every difference points the same way: probability 2**-n under H0. If it is
    above alpha, the test cannot reject whatever the data are.
    """
    return 1.0 if n_nonzero <= 0 else float(2.0 ** -n_nonzero)


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


def cluster_bootstrap_ci(
    values: np.ndarray | Sequence[float],
    clusters: Sequence[Any],
    *,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    method: str = "studentized",
) -> tuple[float, float]:
    """Bootstrap CI of the mean over samples, resampling whole clusters (videos).

    Resampling whole videos keeps the within-video correlation inside each replicate, so the
    interval reflects video-to-video variability, not the much smaller frame-to-frame one. The
    statistic is the pooled sample mean of the resampled videos (matching ``mean_diff``).

    ``method="studentized"`` (default) is the bootstrap-t: each replicate's estimate is divided by
    its own cluster-robust standard error. The plain ``"percentile"`` interval behaves like a
    z-interval with a biased standard error and under-covers with few videos (about 90% for a
    nominal 95% with 20 videos in the calibration simulation); the bootstrap-t does not.
    """
    if method not in ("studentized", "percentile"):
        raise ValueError(f"method must be 'studentized' or 'percentile', got {method!r}")
    _, means, counts = video_means(values, clusters)
    n_videos = len(means)
    if n_videos < 2:
        return float("nan"), float("nan")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    counts = counts.astype(float)
    sums = means * counts
    # One row per replicate: how many times each video was drawn.
    draws = rng.multinomial(n_videos, np.full(n_videos, 1.0 / n_videos), size=int(n_boot)).astype(float)
    total_n = draws @ counts
    boot = (draws @ sums) / total_n
    tail = (1.0 - level) / 2.0
    if method == "percentile":
        low, high = np.quantile(boot, [tail, 1.0 - tail])
        return float(low), float(high)
    est = float(sums.sum() / counts.sum())
    se = _ratio_se(sums, counts, est, np.ones(n_videos))
    # Linearised (cluster-robust) SE of a ratio mean: sqrt(sum_v w_v (s_v - theta n_v)^2) / sum_v w_v n_v,
    # expanded so that all replicates are computed with three matrix products.
    resid_sq = draws @ sums**2 - 2 * boot * (draws @ (sums * counts)) + boot**2 * (draws @ counts**2)
    se_boot = np.sqrt(np.maximum(resid_sq, 0.0)) / total_n
    with np.errstate(divide="ignore", invalid="ignore"):
        t_boot = (boot - est) / se_boot
    t_boot = t_boot[np.isfinite(t_boot)]
    if se == 0 or t_boot.size < n_boot / 2:
        # Degenerate (all videos identical, or almost every replicate repeats one video): fall back.
        low, high = np.quantile(boot, [tail, 1.0 - tail])
        return float(low), float(high)
    q_low, q_high = np.quantile(t_boot, [tail, 1.0 - tail])
    return float(est - q_high * se), float(est - q_low * se)


def _ratio_se(sums: np.ndarray, counts: np.ndarray, est: float, weights: np.ndarray) -> float:
    return float(np.sqrt(np.sum(weights * (sums - est * counts) ** 2)) / np.sum(weights * counts))


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1). NaN entries are left out of the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    factors = m - np.arange(m)
    adjusted = np.minimum(1.0, np.maximum.accumulate(factors * p[order]))
    out[order] = adjusted
    return out


@dataclass
class PairedResult:
    """Result of one metric of one comparison. ``mean_diff``/CI are raw (treatment - control, metric units);
    ``effect_dz`` and ``rank_biserial`` are oriented so that positive means the treatment is better."""

    metric: str
    direction: int
    n: int
    n_videos: int
    mean_treatment: float
    mean_control: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float
    p_ttest: float
    p_permutation: float
    p_wilcoxon_samples: float
    p_wilcoxon_worse: float
    effect_dz: float
    rank_biserial: float
    mean_improvement_per_video: float
    n_videos_improved: int
    n_videos_worse: int
    min_p_wilcoxon: float
    permutation_exact: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_video_test(
    treatment: np.ndarray | Sequence[float],
    control: np.ndarray | Sequence[float],
    video_ids: Sequence[Any],
    *,
    metric: str = "metric",
    direction: int | None = None,
    n_boot: int = 10_000,
    n_permutations: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """All statistics of STATISTICS.md for one metric, on samples already paired by sample_id.

    ``treatment``, ``control`` and ``video_ids`` are aligned per sample. ``direction`` defaults to
    the metric's known direction.
    """
    t = np.asarray(treatment, dtype=float)
    c = np.asarray(control, dtype=float)
    vids = np.asarray(video_ids)
    if not (t.shape == c.shape == vids.shape) or t.ndim != 1:
        raise ValueError(f"treatment {t.shape}, control {c.shape} and video_ids {vids.shape} must be aligned 1-D arrays")
    if t.size == 0:
        raise ValueError(f"{metric}: no paired samples")
    if not (np.isfinite(t).all() and np.isfinite(c).all()):
        raise ValueError(f"{metric}: values must be finite (cap PSNR with cap_psnr first)")
    direction = metric_direction(metric) if direction is None else direction
    raw = t - c
    improvement = oriented(raw, direction)
    _, d_v, _ = video_means(improvement, vids)
    ci_low, ci_high = cluster_bootstrap_ci(raw, vids, n_boot=n_boot, level=level, seed=seed)
    perm = sign_flip_permutation(d_v, n_resamples=n_permutations, seed=seed)
    n_nonzero = int(np.count_nonzero(d_v))
    return PairedResult(
        metric=metric,
        direction=direction,
        n=int(t.size),
        n_videos=int(d_v.size),
        mean_treatment=float(t.mean()),
        mean_control=float(c.mean()),
        mean_diff=float(raw.mean()),
        ci_low=ci_low,
        ci_high=ci_high,
        p_wilcoxon=wilcoxon_p(d_v, "greater"),
        p_ttest=ttest_p(d_v, "greater"),
        p_permutation=perm.pvalue,
        p_wilcoxon_samples=wilcoxon_p(improvement, "greater"),
        p_wilcoxon_worse=wilcoxon_p(d_v, "less"),
        effect_dz=cohens_dz(d_v),
        rank_biserial=rank_biserial(d_v),
        mean_improvement_per_video=float(d_v.mean()),
        n_videos_improved=int((d_v > 0).sum()),
        n_videos_worse=int((d_v < 0).sum()),
        min_p_wilcoxon=min_wilcoxon_p(n_nonzero),
        permutation_exact=perm.exact,
    )


def t_interval(values: np.ndarray | Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t confidence interval (used for per-arm summaries over per-video means)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, arr.size - 1) * stats.sem(arr))
    return mean, mean - half, mean + half


def t_test_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Exact power of the one-sided one-sample t-test for normal data (noncentral t)."""
    if n < 2 or sd <= 0:
        return float("nan")
    df = n - 1
    crit = stats.t.ppf(1 - alpha, df)
    return float(stats.nct.sf(crit, df, effect / sd * math.sqrt(n)))


def wilcoxon_power_approx(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Approximate power of the signed-rank test for normal data: the t-test's power at the effective
    sample size n * 3/pi (the Wilcoxon test's asymptotic relative efficiency under normality)."""
    n_eff = n * 3.0 / math.pi
    if n_eff < 2 or sd <= 0:
        return float("nan")
    df = n_eff - 1
    crit = stats.t.ppf(1 - alpha, df)
    return float(stats.nct.sf(crit, df, effect / sd * math.sqrt(n_eff)))
