"""The decision on arrays: p-values against independent scipy/statsmodels computations, the family, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from lift.report import decision


def _by_hand(t: np.ndarray, c: np.ndarray, direction: int) -> tuple[float, float, float]:
    """Estimate, SE and df written out plainly, cell by cell (an independent computation)."""
    d = [direction * (t[:, j].mean() - c[:, j].mean()) for j in range(t.shape[1])]
    n = len(d)
    terms, dfs = [np.var(d, ddof=1) / n], [n - 1]
    for y in (t, c):
        k = y.shape[0]
        rows = [y[s].mean() for s in range(k)]
        cols = [y[:, j].mean() for j in range(n)]
        grand = y.mean()
        ms_int = sum((y[s, j] - rows[s] - cols[j] + grand) ** 2 for s in range(k) for j in range(n)) / ((k - 1) * (n - 1))
        terms.append(max(np.var(rows, ddof=1) - ms_int / n, 0.0) / k)
        dfs.append(k - 1)
    var = sum(terms)
    df = var ** 2 / sum(v ** 2 / f for v, f in zip(terms, dfs))
    return float(np.mean(d)), float(np.sqrt(var)), float(df)


@pytest.mark.parametrize("direction", [1, -1])
def test_p_values_on_the_cluster_differences_equal_scipy(direction):
    rng = np.random.default_rng(3)
    t = rng.normal(0.2, 1.0, (3, 12)) + rng.normal(0, 0.3, (3, 1)) + np.linspace(0, 2, 12)
    c = rng.normal(0.0, 1.0, (4, 12)) + rng.normal(0, 0.3, (4, 1)) + np.linspace(0, 2, 12)
    res = decision.seed_cluster_test(t[None], c[None], direction)
    est, se, df = _by_hand(t, c, direction)
    d = direction * (t.mean(axis=0) - c.mean(axis=0))
    np.testing.assert_allclose(res.d_c[0], d)
    assert res.estimate[0] == pytest.approx(est) and res.se[0] == pytest.approx(se) and res.df[0] == pytest.approx(df)
    assert res.p_seeds[0] == pytest.approx(stats.t.sf(est / se, df))
    assert res.p_seeds_worse[0] == pytest.approx(stats.t.cdf(est / se, df))
    assert res.p_wilcoxon[0] == pytest.approx(stats.wilcoxon(d, alternative="greater").pvalue)
    assert res.p_wilcoxon_worse[0] == pytest.approx(stats.wilcoxon(d, alternative="less").pvalue)
    assert res.p_better[0] == max(res.p_seeds[0], res.p_wilcoxon[0])
    half = stats.t.ppf(0.975, df) * se
    assert (res.ci_low[0], res.ci_high[0]) == pytest.approx((est - half, est + half))


def test_without_seed_variance_the_test_is_the_t_test_on_the_d_c():
    rng = np.random.default_rng(0)
    base = rng.normal(size=20)
    t = np.tile(base + rng.normal(0.3, 1, 20), (3, 1))  # identical seeds: no seed variance
    c = np.tile(base, (3, 1))
    res = decision.seed_cluster_test(t[None], c[None])
    d = t[0] - c[0]
    assert res.p_seeds[0] == pytest.approx(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
    assert res.df[0] == pytest.approx(19)


def test_a_shared_seed_shift_is_not_an_effect():
    """One seed per arm looks precise; a large seed variance makes the same mean difference uncertain."""
    rng = np.random.default_rng(1)
    d = rng.normal(0.0, 0.1, 50)
    shifts_t, shifts_c = np.array([[1.0], [0.0], [2.0]]), np.array([[0.2], [0.1], [-1.0]])
    t, c = d + shifts_t, np.zeros((3, 50)) + shifts_c
    res = decision.seed_cluster_test(t[None], c[None])
    ignoring = stats.ttest_1samp(t.mean(0) - c.mean(0), 0.0, alternative="greater").pvalue
    assert ignoring < 1e-10 and res.p_seeds[0] > 0.05


def test_holm_and_fixed_sequence_adjustment():
    p = np.array([[0.02, 0.04, 0.03], [0.2, 0.01, 0.01]])
    for row in p:
        np.testing.assert_allclose(decision.holm_adjust(row[None])[0], multipletests(row, method="holm")[1])
    np.testing.assert_allclose(decision.adjust(p, "fixed_sequence"), [[0.02, 0.04, 0.04], [0.2, 0.2, 0.2]])
    fam = decision.primary_decision(p, np.ones_like(p), "fixed_sequence", 0.05)
    assert fam.reject_h0.tolist() == [True, False]  # the first endpoint gates the rest
    fam = decision.primary_decision(p, np.ones_like(p), "holm", 0.05)
    assert fam.reject_h0.tolist() == [False, True]
    worse = np.array([[1.0, 1.0, 0.01], [1.0, 1.0, 1.0]])
    assert decision.primary_decision(p, worse, "fixed_sequence", 0.05).reject_h0.tolist() == [False, False]


def test_design_floor_and_clusters_needed():
    assert decision.min_achievable_p(5) == pytest.approx(2 ** -5)
    assert decision.clusters_needed(0.05) == 5
    assert decision.clusters_needed(0.05, "holm", 3) == 6
    assert decision.min_achievable_p(1) == 1.0
    # The floor is real: five clusters all improving, no seed variance: p = 1/32 from the Wilcoxon part.
    t, c = np.full((3, 5), 1.0) + np.arange(5), np.zeros((3, 5)) + np.arange(5) * 0.5
    assert decision.seed_cluster_test(t[None], c[None]).p_better[0] == pytest.approx(1 / 32)


def _study(n=8, k=3, gain=2.0, blend_gain=-1.0, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(30.0, 0.1, (1, 3, k, n))
    t = c + gain + rng.normal(0, 0.1, (1, 3, k, n))
    t[:, 2] = c[:, 2] - gain / 10  # LPIPS: lower is better
    blend = c[:, :, :1] + blend_gain
    return t, c, blend


def test_verdicts():
    dirs = (1, 1, -1)
    t, c, b = _study()
    res = decision.decide_primary(t, c, dirs, procedure="fixed_sequence", alpha=0.05, blend=b)
    assert decision.verdict(res) == ("H0 rejected", "") and res.reject_h0[0]
    t, c, b = _study(blend_gain=+1.0)
    res = decision.decide_primary(t, c, dirs, procedure="fixed_sequence", alpha=0.05, blend=b)
    assert decision.verdict(res)[0] == "inconclusive" and "blending" in decision.verdict(res)[1] and not res.reject_h0[0]
    t, c, b = _study(k=2)
    res = decision.decide_primary(t, c, dirs, procedure="fixed_sequence", alpha=0.05, blend=b)
    assert decision.verdict(res)[0] == "inconclusive" and "too few seeds" in decision.verdict(res)[1]
    t, c, b = _study(n=3)
    res = decision.decide_primary(t, c, dirs, procedure="fixed_sequence", alpha=0.05, blend=b)
    v, why = decision.verdict(res)
    assert v == "cannot reject by design" and "0.125" in why and "5 are needed" in why
    t, c, b = _study(gain=0.0)
    res = decision.decide_primary(t, c, dirs, procedure="fixed_sequence", alpha=0.05, blend=b)
    assert decision.verdict(res)[0] == "H0 not rejected"


def test_family_from_a_config_section():
    fam = decision.Family.from_dict({"endpoints": ["psnr", "lpips"], "procedure": "holm", "sesoi": {"psnr": 0.2}})
    assert fam.endpoints == ("psnr", "lpips") and fam.sesoi_of("psnr") == 0.2 and fam.sesoi_of("lpips") == 0.001
    with pytest.raises(ValueError, match="procedure 'bonferroni'"):
        decision.Family.from_dict({"procedure": "bonferroni"})
    with pytest.raises(ValueError, match="unknown key"):
        decision.Family.from_dict({"endpoint": ["psnr"]})


def test_one_cluster_is_no_test_not_a_crash() -> None:
    """scipy refuses a permutation test of one observation; one source cannot be tested (p = 1),
    and the report then says "cannot reject by design" (the sweep's one-source tables)."""
    assert decision.wilcoxon_greater(np.array([0.7])).tolist() == 1.0
    assert decision.wilcoxon_greater(np.array([[0.7], [-0.2]])).tolist() == [1.0, 1.0]
