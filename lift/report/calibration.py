"""Calibration of the video-level decision by simulation (STATISTICS.md, "Validation").

Simulated studies have within-video correlation: the improvement of sample j of video v is
``effect + u_v + e_vj`` with a per-video effect ``u_v ~ N(0, sd_video)`` and frame noise
``e_vj ~ N(0, sd_sample)``. The same functions as the report are used (``video_means``,
``wilcoxon_p``, ``cluster_bootstrap_ci``), so this checks the report's code, not a copy of it.

Checks: under H0 (effect 0) the video-level Wilcoxon rejects about alpha of the time (within the
binomial 99% interval) while the sample-level Wilcoxon over-rejects; with a known effect the power
matches theory (exact noncentral-t for the t-test; the Wilcoxon test's ARE approximation); the
cluster-bootstrap interval covers the true mean difference about 95% of the time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats as sps

from lift.report import stats


@dataclass(frozen=True)
class Setting:
    n_videos: int = 20
    samples_per_video: int = 10
    sd_video: float = 1.0
    sd_sample: float = 1.0
    effect: float = 0.5
    alpha: float = 0.05
    level: float = 0.95
    n_boot: int = 1000

    @property
    def sd_video_mean(self) -> float:
        """Standard deviation of one video's mean improvement."""
        return math.sqrt(self.sd_video ** 2 + self.sd_sample ** 2 / self.samples_per_video)

    @property
    def icc(self) -> float:
        return self.sd_video ** 2 / (self.sd_video ** 2 + self.sd_sample ** 2)


def simulate_study(rng: np.random.Generator, setting: Setting, effect: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample improvements and their video ids for one simulated study."""
    v, m = setting.n_videos, setting.samples_per_video
    video_effect = rng.normal(0.0, setting.sd_video, v)
    diff = effect + np.repeat(video_effect, m) + rng.normal(0.0, setting.sd_sample, v * m)
    return diff, np.repeat(np.arange(v), m)


def binomial_interval(n: int, p: float, level: float = 0.99) -> tuple[int, int]:
    """Central ``level`` interval of Binomial(n, p) counts."""
    lo, hi = sps.binom.interval(level, n, p)
    return int(lo), int(hi)


@dataclass
class Rate:
    count: int
    n: int
    expected: float
    interval: tuple[int, int]  # binomial 99% interval of the count around `expected`

    @property
    def rate(self) -> float:
        return self.count / self.n

    @property
    def within(self) -> bool:
        return self.interval[0] <= self.count <= self.interval[1]

    def describe(self) -> str:
        lo, hi = self.interval
        return (f"{self.rate:.4f} ({self.count}/{self.n}); expected {self.expected:.4f}, binomial 99% interval "
                f"[{lo / self.n:.4f}, {hi / self.n:.4f}] -> {'OK' if self.within else 'OUTSIDE'}")


@dataclass
class CalibrationResult:
    setting: Setting
    n_sims: int
    type1_video: Rate
    type1_video_ttest: Rate
    type1_samples: Rate
    power_video: Rate  # Wilcoxon, expected = ARE approximation
    power_ttest: Rate  # t-test on d_v, expected = exact noncentral-t power
    coverage: Rate  # cluster bootstrap, H0 and effect sims together

    def to_dict(self) -> dict[str, Any]:
        out = {"setting": asdict(self.setting), "n_sims": self.n_sims}
        for key in ("type1_video", "type1_video_ttest", "type1_samples", "power_video", "power_ttest", "coverage"):
            r: Rate = getattr(self, key)
            out[key] = {"rate": r.rate, "count": r.count, "n": r.n, "expected": r.expected,
                        "interval": [r.interval[0] / r.n, r.interval[1] / r.n], "within": r.within}
        return out

    def lines(self) -> list[str]:
        s = self.setting
        return [
            f"setting: {s.n_videos} videos x {s.samples_per_video} samples, sd_video={s.sd_video}, sd_sample={s.sd_sample} "
            f"(ICC {s.icc:.2f}), effect={s.effect}, alpha={s.alpha}, {self.n_sims} simulated studies per scenario",
            f"type-I error, video-level Wilcoxon (the decision): {self.type1_video.describe()}",
            f"type-I error, video-level t-test:                  {self.type1_video_ttest.describe()}",
            f"type-I error, sample-level Wilcoxon (ignores correlation): {self.type1_samples.rate:.4f} "
            f"({self.type1_samples.count}/{self.n_sims}), {self.type1_samples.rate / s.alpha:.1f}x alpha "
            f"-> {'over-rejects' if self.type1_samples.count > self.type1_samples.interval[1] else 'does not over-reject'}",
            f"power, video-level t-test vs exact theory:         {self.power_ttest.describe()}",
            f"power, video-level Wilcoxon vs ARE approximation:  {self.power_video.describe()}",
            f"cluster-bootstrap {int(s.level * 100)}% CI coverage of the true mean: {self.coverage.describe()}",
        ]


def run_calibration(
    n_sims: int,
    setting: Setting = Setting(),
    *,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> CalibrationResult:
    """Simulate ``n_sims`` studies under H0 and ``n_sims`` with ``setting.effect``; count rejections and coverage.

    ``progress`` is called with the number of simulated studies finished (out of 2 * n_sims).
    """
    rng = np.random.default_rng(seed)
    alpha = setting.alpha
    rej_video = rej_t = rej_samples = 0
    pow_video = pow_t = 0
    covered = 0
    done = 0
    for effect in (0.0, setting.effect):
        for _ in range(n_sims):
            diff, vids = simulate_study(rng, setting, effect)
            _, d_v, _ = stats.video_means(diff, vids)
            p_video = stats.wilcoxon_p(d_v)
            p_t = stats.ttest_p(d_v)
            lo, hi = stats.cluster_bootstrap_ci(diff, vids, n_boot=setting.n_boot, level=setting.level, seed=rng)
            covered += lo <= effect <= hi
            if effect == 0.0:
                rej_video += p_video < alpha
                rej_t += p_t < alpha
                rej_samples += stats.wilcoxon_p(diff) < alpha
            else:
                pow_video += p_video < alpha
                pow_t += p_t < alpha
            done += 1
            if progress is not None:
                progress(done)
    n = n_sims
    sd = setting.sd_video_mean
    t_power = stats.t_test_power(setting.effect, sd, setting.n_videos, alpha)
    w_power = stats.wilcoxon_power_approx(setting.effect, sd, setting.n_videos, alpha)

    def rate(count: int, total: int, expected: float) -> Rate:
        return Rate(int(count), total, expected, binomial_interval(total, expected))

    return CalibrationResult(
        setting=setting,
        n_sims=n,
        type1_video=rate(rej_video, n, alpha),
        type1_video_ttest=rate(rej_t, n, alpha),
        type1_samples=rate(rej_samples, n, alpha),
        power_video=rate(pow_video, n, w_power),
        power_ttest=rate(pow_t, n, t_power),
        coverage=rate(covered, 2 * n, setting.level),
    )
