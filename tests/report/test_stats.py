"""The statistics against scipy, statsmodels and hand-computed cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from lift.report import decision, stats

# Fixed per-video differences: no ties, no zeros (exact Wilcoxon), and a set with ties and a zero.
D = np.array([0.81, -0.32, 1.47, 0.05, 0.66, -0.11, 0.93, 0.28, 1.12, -0.57, 0.44, 0.19])
D_TIES = np.array([0.5, 0.5, -0.5, 1.0, 0.0, 2.0, -1.0, 0.5, 1.5])


def exact_signed_rank_p(d: np.ndarray) -> float:
    """Independent exact one-sided signed-rank p: enumerate every sign pattern of the ranks."""
    d = d[d != 0]
    ranks = sps.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    count = total = 0
    for signs in itertools.product((0, 1), repeat=len(d)):
        total += 1
        count += ranks[np.array(signs, bool)].sum() >= observed - 1e-12
    return count / total


def test_wilcoxon_matches_scipy_and_enumeration():
    assert stats.wilcoxon_p(D) == pytest.approx(sps.wilcoxon(D, alternative="greater").pvalue, rel=1e-12)
    assert stats.wilcoxon_p(D) == pytest.approx(exact_signed_rank_p(D), rel=1e-12)
    assert stats.wilcoxon_p(D, "less") == pytest.approx(sps.wilcoxon(D, alternative="less").pvalue, rel=1e-12)
    # Ties and a zero: scipy's default switches to its permutation method; still the same call.
    assert stats.wilcoxon_p(D_TIES) == pytest.approx(sps.wilcoxon(D_TIES, alternative="greater").pvalue, rel=1e-12)
    assert stats.wilcoxon_p(D_TIES) == pytest.approx(exact_signed_rank_p(D_TIES), rel=1e-9)


def test_wilcoxon_degenerate_inputs():
    assert stats.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert stats.wilcoxon_p([]) == 1.0
    # Four videos all improving: the exact test's floor 1/16 > 0.05, so it can never reject.
    assert stats.wilcoxon_p([0.1, 0.2, 0.3, 0.4]) == pytest.approx(1 / 16)
    assert decision.min_achievable_p(4) == pytest.approx(1 / 16)
    assert decision.min_achievable_p(5) == pytest.approx(1 / 32)
    assert decision.min_achievable_p(0) == 1.0


def test_ttest_matches_scipy_and_statsmodels():
    p = stats.ttest_p(D)
    assert p == pytest.approx(sps.ttest_1samp(D, 0.0, alternative="greater").pvalue, rel=1e-12)
    _, p_sm, _ = DescrStatsW(D).ttest_mean(0.0, alternative="larger")
    assert p == pytest.approx(p_sm, rel=1e-10)
    assert math.isnan(stats.ttest_p([1.0]))
    assert math.isnan(stats.ttest_p([1.0, 1.0, 1.0]))


def test_holm_matches_statsmodels_and_hand_values():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert decision.holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(0, 0.2, rng.integers(1, 12))
        assert decision.holm_adjust(q) == pytest.approx(multipletests(q, method="holm")[1], rel=1e-12)
    assert decision.holm_adjust(np.array([0.2, 0.01])) == pytest.approx([0.2, 0.02])
    assert decision.holm_adjust(np.array([0.9, 0.8])) == pytest.approx([1.0, 1.0])  # capped at 1, then monotone


def test_exact_permutation_hand_case():
    # Sign flips of [1, 2, -0.5]: sums 3.5, 2.5, 1.5, 0.5, -0.5, -1.5, -2.5, -3.5; observed 2.5 -> 2 of 8.
    res = stats.sign_flip_permutation([1.0, 2.0, -0.5])
    assert res.exact and res.n_resamples == 8
    assert res.pvalue == pytest.approx(0.25)
    assert stats.sign_flip_permutation([1.0, 1.0, 1.0]).pvalue == pytest.approx(1 / 8)


def test_permutation_exact_enumeration_and_random_flips():
    # Exact up to 16 values: compare with a direct enumeration of all sign patterns.
    d = D
    flips = np.array(list(itertools.product((-1, 1), repeat=len(d))))
    means = (flips * d).mean(axis=1)
    expected = np.mean(means >= d.mean() - 1e-12)
    res = stats.sign_flip_permutation(d)
    assert res.exact and res.pvalue == pytest.approx(expected)
    # Beyond that: seeded random flips, reproducible, never 0, close to the exact answer.
    big = np.concatenate([D, D + 0.1, D - 0.05])
    r1 = stats.sign_flip_permutation(big, n_resamples=20_000, seed=1)
    r2 = stats.sign_flip_permutation(big, n_resamples=20_000, seed=1)
    assert not r1.exact and r1.pvalue == r2.pvalue and r1.pvalue >= 1 / 20_001
    assert r1.pvalue == pytest.approx(sps.ttest_1samp(big, 0, alternative="greater").pvalue, abs=0.01)


def test_direction_per_metric():
    rng = np.random.default_rng(0)
    control = rng.uniform(0.2, 0.4, (3, 8))
    lower = control - 0.05 - rng.uniform(0, 0.01, (3, 8))
    # LPIPS lower is better: a treatment with lower LPIPS improves on every cluster.
    r = decision.seed_cluster_test(lower[None], control[None], stats.metric_direction("lpips"))
    assert r.p_wilcoxon[0] == pytest.approx(1 / 256) and r.p_wilcoxon_worse[0] == pytest.approx(1.0)
    assert r.estimate[0] > 0 and (r.d_c[0] > 0).all()
    # The same numbers read as PSNR (higher is better) are a loss.
    r = decision.seed_cluster_test(lower[None], control[None], stats.metric_direction("psnr"))
    assert r.p_wilcoxon[0] == pytest.approx(1.0) and r.p_wilcoxon_worse[0] == pytest.approx(1 / 256)
    assert stats.rank_biserial(r.d_c[0]) == pytest.approx(-1.0)
    assert stats.metric_direction("ssim") == 1 and stats.metric_direction("epe") == -1
    with pytest.raises(ValueError, match="unknown metric"):
        stats.metric_direction("fid")


def test_rank_biserial_and_dz_hand_cases():
    # ranks of |d| = 1, 2, 3, 4; R+ = 1 + 3 + 4 = 8, R- = 2 -> (8 - 2) / 10.
    assert stats.rank_biserial([1.0, -2.0, 3.0, 4.0]) == pytest.approx(0.6)
    assert stats.rank_biserial([1.0, 2.0, -3.0]) == pytest.approx(0.0)
    assert stats.rank_biserial([0.0, 1.0, 2.0]) == pytest.approx(1.0)  # zeros dropped as in the test
    # r = 2 * W+ / (n(n+1)/2) - 1 with scipy's signed-rank statistic.
    w = sps.wilcoxon(D, alternative="greater").statistic
    n = len(D)
    assert stats.rank_biserial(D) == pytest.approx(2 * w / (n * (n + 1) / 2) - 1)
    assert stats.cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert math.isnan(stats.cohens_dz([1.0]))


def test_permutation_with_one_unit_is_exact():
    assert stats.sign_flip_permutation([0.3]).pvalue == 0.5
    assert stats.sign_flip_permutation([-0.3]).pvalue == 1.0


def test_cap_psnr_is_the_one_infinite_psnr_policy() -> None:
    capped, over = stats.cap_psnr([30.0, np.inf, 120.0, np.nan], cap=100.0)
    np.testing.assert_array_equal(capped, [30.0, 100.0, 100.0, np.nan])
    assert over.tolist() == [False, True, True, False]


def test_one_t_interval_for_summaries_and_the_decision() -> None:
    values = np.array([1.0, 2.0, 4.0, 7.0])
    mean, lo, hi = stats.t_interval(values, 0.9)
    half = sps.t.ppf(0.95, 3) * sps.sem(values)
    assert mean == 3.5 and lo == pytest.approx(3.5 - half) and hi == pytest.approx(3.5 + half)
    low, high = decision.t_bounds(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([10.0, 20.0]), 0.95)
    np.testing.assert_allclose(high, [sps.t.ppf(0.975, 10), 1.0 + 2.0 * sps.t.ppf(0.975, 20)])
    np.testing.assert_allclose(low, [-sps.t.ppf(0.975, 10), 1.0 - 2.0 * sps.t.ppf(0.975, 20)])
