"""The report's decision on H0 (STATISTICS.md, version 2), on arrays.

Everything here works on per-seed, per-cluster means, shaped ``[..., k, n]`` (``k`` seeds of one arm,
``n`` clusters), and is vectorised over any leading batch axes, so that the calibration
(:mod:`lift.report.calibration`) runs *this* code on thousands of simulated studies at once and the
report runs it on one. Nothing here reads files.

The test of one metric, treatment T against control C:

* ``d_c``: per cluster, the seed-averaged mean of T minus that of C, oriented so that positive means
  T is better. The estimate is ``D = mean(d_c)``.
* Seeds are random: a trained model is one draw, and its shift is shared by every cluster. So
  ``SE^2 = s^2(d_c)/n + V_T + V_C`` where ``V_arm`` estimates ``sigma^2_seed(arm)/k_arm``: the variance of
  the arm's per-seed means over clusters, less the part its seed-by-cluster noise already puts into
  ``s^2(d_c)`` (two-way ANOVA without replication: ``(s^2(seed means) - MS_interaction/n)/k``, at least 0).
  Degrees of freedom: Welch-Satterthwaite over the three terms. An arm with one seed (a deterministic
  baseline) adds no term.
* The decision p-value of a metric is the larger of that seed-aware t-test and the one-sided Wilcoxon
  signed-rank test on the ``d_c`` (scipy, exact up to 50 clusters). The Wilcoxon part guards the
  small-cluster, skewed case and fixes the smallest p the design can reach: ``2**-n``.
* "Significantly worse" (the harm check) is the same test in the other direction, at alpha, per metric.

The family: the endpoints in fixed sequence (the first at alpha, each next only when the one before was
rejected) or Holm over them; H0 is rejected when the first endpoint (fixed sequence) or any endpoint
(Holm) is rejected and no endpoint is significantly worse.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

VERDICTS = ("H0 rejected", "H0 not rejected", "inconclusive", "cannot reject by design")
PROCEDURES = ("fixed_sequence", "holm")
# Where the ablation table's comparisons (each factor change against the base arm) are tested: with the
# gatekept secondary family, or in their own Holm family at full alpha (the study config's choice).
ABLATION_FAMILIES = ("secondary", "own")
# The confirm stage's minimum: with fewer seeds the seed variance is not estimable well enough to decide.
MIN_SEEDS = 3


@dataclass
class MetricTest:
    """One metric of one comparison (arrays over the batch axes). Differences are oriented: > 0 is better."""

    estimate: np.ndarray  # mean over clusters of d_c
    se: np.ndarray
    df: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_seeds: np.ndarray  # seed-aware t-test, one-sided "better"
    p_seeds_worse: np.ndarray
    p_wilcoxon: np.ndarray  # Wilcoxon signed-rank on d_c, "better"
    p_wilcoxon_worse: np.ndarray
    p_better: np.ndarray  # the decision's p: max(p_seeds, p_wilcoxon)
    p_worse: np.ndarray
    d_c: np.ndarray  # [..., n]


def seed_component(y: np.ndarray) -> tuple[np.ndarray, int]:
    """``(V, k)``: the variance the arm's seed-to-seed shift adds to a mean over its ``k`` seeds.

    ``y`` is ``[..., k, n]`` (seed x cluster means). Zero for one seed.
    """
    k, n = y.shape[-2], y.shape[-1]
    if k < 2:
        return np.zeros(y.shape[:-2]), k
    seed_means = y.mean(axis=-1)
    s2_seeds = seed_means.var(axis=-1, ddof=1)
    if n < 2:
        return s2_seeds / k, k
    resid = y - seed_means[..., :, None] - y.mean(axis=-2)[..., None, :] + y.mean(axis=(-2, -1))[..., None, None]
    ms_interaction = (resid ** 2).sum(axis=(-2, -1)) / ((k - 1) * (n - 1))
    return np.maximum(s2_seeds - ms_interaction / n, 0.0) / k, k


def wilcoxon_greater(d: np.ndarray) -> np.ndarray:
    """One-sided Wilcoxon signed-rank p-values along the last axis (scipy's default method);
    1 where there is no non-zero difference (no evidence either way)."""
    d = np.asarray(d, dtype=float)
    if d.shape[-1] < 2:  # one cluster (or none) cannot be tested: scipy refuses, the p stays 1
        return np.ones(d.shape[:-1])
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        p = np.asarray(stats.wilcoxon(d, axis=-1, alternative="greater").pvalue, dtype=float)
    return np.where(np.isfinite(p), p, 1.0)


def t_bounds(estimate: np.ndarray | float, se: np.ndarray | float, df: np.ndarray | float,
             level: float = 0.95) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The report's one t interval: ``estimate -/+ t_{(1+level)/2, df} * se`` (arrays broadcast). Used by
    the decision (Welch-Satterthwaite df) and the per-arm summaries (:func:`lift.report.stats.t_interval`)."""
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return estimate - half, estimate + half


def seed_cluster_test(treatment: np.ndarray, control: np.ndarray, direction: int = 1,
                      level: float = 0.95) -> MetricTest:
    """The seed-aware test of one metric; ``treatment`` ``[..., k_T, n]``, ``control`` ``[..., k_C, n]``."""
    t = np.asarray(treatment, dtype=float)
    c = np.asarray(control, dtype=float)
    if t.shape[-1] != c.shape[-1] or t.ndim < 2 or c.ndim < 2:
        raise ValueError(f"treatment {t.shape} and control {c.shape} must be [..., seeds, clusters] with equal clusters")
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    d = direction * (t.mean(axis=-2) - c.mean(axis=-2))
    n = d.shape[-1]
    est = d.mean(axis=-1)
    v_clusters = d.var(axis=-1, ddof=1) / n if n > 1 else np.full(est.shape, np.nan)
    v_t, k_t = seed_component(t)
    v_c, k_c = seed_component(c)
    var = v_clusters + v_t + v_c
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = v_clusters ** 2 / max(n - 1, 1)
        denom = denom + (v_t ** 2 / (k_t - 1) if k_t > 1 else 0.0) + (v_c ** 2 / (k_c - 1) if k_c > 1 else 0.0)
        df = np.where(denom > 0, var ** 2 / denom, max(n - 1, 1))
        se = np.sqrt(var)
        tstat = est / se
    # A zero SE with a non-zero estimate is certainty; with a zero estimate there is no evidence.
    tstat = np.where(se > 0, tstat, np.where(est > 0, np.inf, np.where(est < 0, -np.inf, 0.0)))
    p_seeds = np.where(np.isnan(var), 1.0, stats.t.sf(tstat, df))
    p_seeds_worse = np.where(np.isnan(var), 1.0, stats.t.cdf(tstat, df))
    ci_low, ci_high = t_bounds(est, se, df, level)
    p_w = wilcoxon_greater(d)
    p_w_worse = wilcoxon_greater(-d)
    return MetricTest(
        estimate=est, se=se, df=df, ci_low=ci_low, ci_high=ci_high,
        p_seeds=p_seeds, p_seeds_worse=p_seeds_worse, p_wilcoxon=p_w, p_wilcoxon_worse=p_w_worse,
        p_better=np.maximum(p_seeds, p_w), p_worse=np.maximum(p_seeds_worse, p_w_worse), d_c=d,
    )


def holm_adjust(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values along the last axis (step-down, monotone, capped at 1)."""
    p = np.asarray(p, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    adjusted = np.minimum(1.0, np.maximum.accumulate(sorted_p * (m - np.arange(m)), axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def adjust(p: np.ndarray, procedure: str) -> np.ndarray:
    """Family-adjusted p-values along the last axis (the endpoints in their configured order)."""
    if procedure == "fixed_sequence":
        # Endpoint j is tested only when every one before it was rejected: its adjusted p is the largest so far.
        return np.maximum.accumulate(np.asarray(p, dtype=float), axis=-1)
    if procedure == "holm":
        return holm_adjust(p)
    raise ValueError(f"unknown procedure {procedure!r}; expected one of {', '.join(PROCEDURES)}")


@dataclass
class FamilyDecision:
    reject_h0: np.ndarray  # [...]
    significant: np.ndarray  # [..., m]
    worse: np.ndarray  # [..., m]
    p_adjusted: np.ndarray  # [..., m]


def primary_decision(p_better: np.ndarray, p_worse: np.ndarray, procedure: str, alpha: float) -> FamilyDecision:
    """The primary family's decision from per-endpoint p-values ``[..., m]`` (endpoints in order)."""
    p_adj = adjust(p_better, procedure)
    significant = p_adj < alpha
    worse = np.asarray(p_worse) < alpha
    first = significant[..., 0] if procedure == "fixed_sequence" else significant.any(axis=-1)
    return FamilyDecision(first & ~worse.any(axis=-1), significant, worse, p_adj)


def min_achievable_p(n_clusters: int, procedure: str = "fixed_sequence", n_endpoints: int = 3) -> float:
    """Smallest adjusted p the primary family can reach with ``n_clusters``: the Wilcoxon part's ``2**-n``,
    times the number of endpoints under Holm (fixed sequence tests the first endpoint at full alpha)."""
    if n_clusters < 2:
        return 1.0
    factor = n_endpoints if procedure == "holm" else 1
    return min(1.0, factor * 2.0 ** -n_clusters)


def clusters_needed(alpha: float, procedure: str = "fixed_sequence", n_endpoints: int = 3) -> int:
    """Fewest clusters for which the primary family can reject at ``alpha`` at all."""
    n = 2
    while min_achievable_p(n, procedure, n_endpoints) >= alpha:
        n += 1
    return n


def sanity_window3_beats_blend(control: np.ndarray, blend: np.ndarray, direction: int) -> np.ndarray:
    """Window 3's cluster-weighted mean of the first endpoint is better than blending's (a point check:
    a control that loses to averaging the anchors is undertrained, and a verdict between two such models
    says nothing about context)."""
    return direction * (np.asarray(control).mean(axis=(-2, -1)) - np.asarray(blend).mean(axis=(-2, -1))) > 0


@dataclass
class PrimaryResult:
    """The primary family of one or many studies (batch axis first)."""

    tests: list[MetricTest]  # one per endpoint, in the family's order
    family: FamilyDecision
    sanity_ok: np.ndarray | None  # [B], None without a blend arm
    design_ok: bool  # the smallest achievable p is below alpha
    seeds_ok: bool  # both arms have at least MIN_SEEDS seeds
    reject_h0: np.ndarray  # [B]: the verdict is "H0 rejected"
    n_clusters: int
    seeds: tuple[int, int]
    alpha: float
    procedure: str


def decide_primary(treatment: np.ndarray, control: np.ndarray, directions: Sequence[int], *, procedure: str,
                   alpha: float, blend: np.ndarray | None = None, level: float = 0.95) -> PrimaryResult:
    """``reject_h0`` and everything behind it, exactly as the report computes it, for a batch of studies.

    ``treatment`` ``[B, m, k_T, n]`` and ``control`` ``[B, m, k_C, n]`` hold per-seed, per-cluster means of
    the ``m`` endpoints in the family's order; ``blend`` ``[B, m, k, n]`` or None.
    """
    m = len(directions)
    if treatment.ndim != 4 or control.ndim != 4 or treatment.shape[1] != m or control.shape[1] != m:
        raise ValueError(f"treatment {treatment.shape} and control {control.shape} must be [B, {m}, seeds, clusters]")
    tests = [seed_cluster_test(treatment[:, j], control[:, j], directions[j], level) for j in range(m)]
    fam = primary_decision(np.stack([t.p_better for t in tests], -1), np.stack([t.p_worse for t in tests], -1),
                           procedure, alpha)
    n, seeds = treatment.shape[-1], (treatment.shape[-2], control.shape[-2])
    design_ok = min_achievable_p(n, procedure, m) < alpha
    seeds_ok = min(seeds) >= MIN_SEEDS
    sanity = None if blend is None else sanity_window3_beats_blend(control[:, 0], blend[:, 0], directions[0])
    reject = fam.reject_h0 & design_ok & seeds_ok & (True if sanity is None else sanity)
    return PrimaryResult(tests, fam, sanity, design_ok, seeds_ok, np.asarray(reject), n, seeds, alpha, procedure)


def verdict(result: PrimaryResult, index: int = 0) -> tuple[str, str]:
    """One of :data:`VERDICTS` for study ``index`` of ``result``, and why (empty for a plain decision)."""
    m = len(result.tests)
    if not result.design_ok:
        floor = min_achievable_p(result.n_clusters, result.procedure, m)
        need = clusters_needed(result.alpha, result.procedure, m)
        return VERDICTS[3], (f"with {result.n_clusters} independent source(s) the smallest achievable p is "
                             f"{floor:.3g}, not below alpha={result.alpha:g}; {need} are needed")
    if not result.seeds_ok:
        return VERDICTS[2], (f"too few seeds ({result.seeds[0]} treatment, {result.seeds[1]} control): at least "
                             f"{MIN_SEEDS} per arm are needed to estimate the seed variance")
    if result.sanity_ok is not None and not bool(result.sanity_ok[index]):
        return VERDICTS[2], "the control does not beat blending (the models look undertrained)"
    return (VERDICTS[0], "") if bool(result.reject_h0[index]) else (VERDICTS[1], "")


DEFAULT_ENDPOINTS = ("psnr", "ssim", "lpips")
# Smallest effects of interest in metric units (improvement magnitude), when the study config names none.
DEFAULT_SESOI = {"psnr": 0.1, "ssim": 0.001, "lpips": 0.001}


@dataclass(frozen=True)
class Family:
    """The test family, fixed in the study config before the data are seen (its ``report:`` section)."""

    endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    procedure: str = "fixed_sequence"
    alpha: float = 0.05
    sesoi: tuple[tuple[str, float], ...] = tuple(DEFAULT_SESOI.items())

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("the family needs at least one endpoint")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError(f"endpoints {list(self.endpoints)} repeat a metric")
        if self.procedure not in PROCEDURES:
            raise ValueError(f"procedure {self.procedure!r}: expected one of {', '.join(PROCEDURES)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        for metric, value in self.sesoi:
            if not value >= 0:
                raise ValueError(f"smallest effect of interest for {metric} must be >= 0, got {value}")

    def sesoi_of(self, metric: str) -> float:
        return dict(self.sesoi).get(metric, 0.0)

    def to_dict(self) -> dict[str, object]:
        return {"endpoints": list(self.endpoints), "procedure": self.procedure, "alpha": self.alpha,
                "sesoi": dict(self.sesoi)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Family":
        """From a study config's ``report:`` section (or study_summary.json's ``family``); missing keys default."""
        known = {"endpoints", "procedure", "alpha", "sesoi"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        endpoints = tuple(str(e) for e in data.get("endpoints", DEFAULT_ENDPOINTS))  # type: ignore[union-attr]
        sesoi = dict(DEFAULT_SESOI)
        raw = data.get("sesoi") or {}
        if not isinstance(raw, dict):
            raise ValueError(f"sesoi must map metric names to numbers, got {raw!r}")
        sesoi.update({str(k): float(v) for k, v in raw.items()})
        return cls(endpoints=endpoints, procedure=str(data.get("procedure", "fixed_sequence")),
                   alpha=float(data.get("alpha", 0.05)),  # type: ignore[arg-type]
                   sesoi=tuple((m, sesoi.get(m, 0.0)) for m in endpoints))


# The fine-tuning check: window 3 fine-tuned from the published RIFE may fall short of the published
# model by at most this much (metric units, in the improving direction): fine-tuning must not make
# RIFE worse.
PUBLISHED_TOLERANCE = {"psnr": 0.1, "ssim": 0.001, "lpips": 0.001}


def not_below_published(result: dict[str, Any]) -> bool:
    """Whether window 3's mean difference to the published model (one metric's result: `metric`,
    `direction` orienting improvements as positive, `mean_diff`) is within PUBLISHED_TOLERANCE of
    zero or better (a point check, not a test)."""
    return bool(result["direction"] * result["mean_diff"] >= -PUBLISHED_TOLERANCE.get(result["metric"], 0.0))

