"""Calibration of the report's decision itself, by simulation (STATISTICS.md, "Validation").

A simulated study has the structure of a real one: ``n_clusters`` independent sources (groups), each
with ``clips`` clips of ``samples`` target frames; a treatment and a control arm trained with ``seeds``
seeds each, and a ``blend`` baseline; the three endpoints of the family (PSNR, SSIM, LPIPS, with their
directions), correlated. In the treatment's improvement over the control (in units where the SD of a
per-cluster difference d_c is about 1):

* a per-group benefit of context ``u_g``, skewed (a standardised Gamma(2), skewness 1.4), mean 0 under H0;
* a per-clip deviation ``v_gj`` (clips of one group are alike, not identical);
* per arm and seed a shift ``sigma_s ~ N(0, seed_sd)`` shared by every cluster (one trained model), a
  seed-by-cluster term, and frame noise per sample.

``reject_h0`` is :func:`lift.report.decision.decide_primary`, the function the report calls, on the
per-seed, per-cluster means of these per-sample values; the old decisions (v1's video-level Wilcoxon on
clips, and a Wilcoxon on the d_c that averages the seeds away) are computed on the same draws.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats as sps

from lift.report import decision

DIRECTIONS = (1, 1, -1)  # psnr, ssim, lpips: the family's endpoints in order
ENDPOINT_CORRELATION = 0.6


@dataclass(frozen=True)
class Setting:
    n_clusters: int = 30
    clips: int = 3
    samples: int = 6
    seeds: int = 3
    sd_group: float = 0.8  # per-group benefit (skewed)
    sd_clip: float = 0.5
    sd_interaction: float = 0.3  # seed x cluster
    sd_sample: float = 1.0
    seed_factor: float = 0.0  # seed SD as a multiple of the per-cluster SD
    effect: float = 0.5  # true mean improvement (per-cluster SD units) of the power scenario
    skew: int = 1  # +1: a few groups gain much (right-skewed benefit); -1: a few lose much
    alpha: float = 0.05
    procedure: str = "fixed_sequence"

    @property
    def sd_cluster(self) -> float:
        """SD of one per-cluster difference d_c without seed shifts (both arms' noise averaged over seeds)."""
        noise = self.sd_interaction ** 2 + self.sd_sample ** 2 / (self.clips * self.samples)
        return math.sqrt(self.sd_group ** 2 + self.sd_clip ** 2 / self.clips + 2 * noise / self.seeds)

    @property
    def sd_seed(self) -> float:
        return self.seed_factor * self.sd_cluster


def _correlated(rng: np.random.Generator, shape: tuple[int, ...], m: int, draw: Callable[..., np.ndarray]) -> np.ndarray:
    """``[B, m, ...]`` draws whose endpoints share a component (correlation ENDPOINT_CORRELATION)."""
    shared = draw(rng, (shape[0], 1) + shape[1:])
    own = draw(rng, (shape[0], m) + shape[1:])
    r = ENDPOINT_CORRELATION
    return math.sqrt(r) * shared + math.sqrt(1 - r) * own


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def _skewed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.gamma(2.0, 1.0, shape) - 2.0) / math.sqrt(2.0)


@dataclass
class SimulatedStudies:
    treatment: np.ndarray  # [B, m, k, G] per-seed, per-cluster means (raw metric units, shifted by a level)
    control: np.ndarray
    blend: np.ndarray  # [B, m, 1, G]
    clip_diff: np.ndarray  # [B, G * clips]: seed-averaged per-clip improvement of the first endpoint


def simulate(rng: np.random.Generator, setting: Setting, batch: int, effect: float) -> SimulatedStudies:
    """``batch`` studies, drawn per sample and reduced to the means the decision uses."""
    s, m = setting, len(DIRECTIONS)
    g, c, n, k = s.n_clusters, s.clips, s.samples, s.seeds
    u = s.skew * s.sd_group * _correlated(rng, (batch, g), m, _skewed)
    benefit = (effect * s.sd_cluster + u)[..., None, None]
    benefit = benefit + s.sd_clip * _correlated(rng, (batch, g, c), m, _normal)[..., None]  # [B, m, G, c, 1]

    def arm(seeds: int) -> np.ndarray:  # per-sample noise of one arm: [B, m, k, G, c, n]
        shift = s.sd_seed * _correlated(rng, (batch, seeds), m, _normal)[..., None, None, None]
        inter = s.sd_interaction * _correlated(rng, (batch, seeds, g), m, _normal)[..., None, None]
        return shift + inter + s.sd_sample * _correlated(rng, (batch, seeds, g, c, n), m, _normal)

    d = np.asarray(DIRECTIONS, dtype=float)[None, :, None, None, None, None]
    level = 30.0  # any common level: the control and blend sit on it, the treatment adds its benefit
    t_samples = level + d * (benefit[:, :, None] + arm(k))
    c_samples = level + d * arm(k)
    b_samples = level + d * (-1.0 * s.sd_cluster + arm(1))  # blending is clearly worse than window 3
    clip_t, clip_c = t_samples.mean(axis=-1), c_samples.mean(axis=-1)  # [B, m, k, G, c]
    clip_diff = DIRECTIONS[0] * (clip_t[:, 0].mean(axis=1) - clip_c[:, 0].mean(axis=1))  # [B, G, c]
    return SimulatedStudies(clip_t.mean(axis=-1), clip_c.mean(axis=-1), b_samples.mean(axis=(-1, -2)),
                            clip_diff.reshape(batch, g * c))


@dataclass
class Rate:
    count: int
    n: int

    @property
    def rate(self) -> float:
        return self.count / self.n


def binomial_interval(n: int, p: float, level: float = 0.99) -> tuple[float, float]:
    """Central ``level`` interval of the rate of Binomial(n, p)."""
    lo, hi = sps.binom.interval(level, n, p)
    return float(lo) / n, float(hi) / n


@dataclass
class CellResult:
    setting: Setting
    n_sims: int
    reject_h0: Rate  # the report's decision under H0
    old_clip_level: Rate  # v1: Wilcoxon on per-clip means, seeds averaged
    seed_ignoring: Rate  # Wilcoxon on the d_c, seeds averaged
    power: Rate  # the report's decision under the effect
    coverage: Rate  # the first endpoint's interval covers the true effect (H0 and effect studies)

    @property
    def type1_limit(self) -> float:
        return binomial_interval(self.n_sims, self.setting.alpha)[1]

    @property
    def holds_alpha(self) -> bool:
        return self.reject_h0.rate <= self.type1_limit

    @property
    def coverage_ok(self) -> bool:
        return abs(self.coverage.rate - 0.95) <= 0.02

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"setting": asdict(self.setting), "n_sims": self.n_sims,
                               "sd_cluster": self.setting.sd_cluster, "type1_limit": self.type1_limit,
                               "holds_alpha": self.holds_alpha, "coverage_ok": self.coverage_ok}
        for key in ("reject_h0", "old_clip_level", "seed_ignoring", "power", "coverage"):
            r: Rate = getattr(self, key)
            out[key] = {"rate": r.rate, "count": r.count, "n": r.n}
        return out


def run_cell(n_sims: int, setting: Setting, *, seed: int = 0,
             progress: Callable[[int], None] | None = None) -> CellResult:
    """``n_sims`` studies under H0 and ``n_sims`` under ``setting.effect``, in chunks of about 4M samples."""
    rng = np.random.default_rng(seed)
    per_study = len(DIRECTIONS) * setting.seeds * setting.n_clusters * setting.clips * setting.samples
    chunk = max(1, 4_000_000 // per_study)
    counts = dict(reject=0, clip=0, ignoring=0, power=0, covered=0)
    for effect in (0.0, setting.effect):
        done = 0
        while done < n_sims:
            b = min(chunk, n_sims - done)
            sims = simulate(rng, setting, b, effect)
            res = decision.decide_primary(sims.treatment, sims.control, DIRECTIONS, procedure=setting.procedure,
                                          alpha=setting.alpha, blend=sims.blend)
            first = res.tests[0]
            truth = effect * setting.sd_cluster
            counts["covered"] += int(((first.ci_low <= truth) & (truth <= first.ci_high)).sum())
            if effect == 0.0:
                counts["reject"] += int(res.reject_h0.sum())
                counts["clip"] += int((decision.wilcoxon_greater(sims.clip_diff) < setting.alpha).sum())
                counts["ignoring"] += int((first.p_wilcoxon < setting.alpha).sum())
            else:
                counts["power"] += int(res.reject_h0.sum())
            done += b
            if progress is not None:
                progress(b)
    n = n_sims
    return CellResult(setting, n, Rate(counts["reject"], n), Rate(counts["clip"], n), Rate(counts["ignoring"], n),
                      Rate(counts["power"], n), Rate(counts["covered"], 2 * n))


def grid(clusters: tuple[int, ...] = (8, 30, 200), seed_factors: tuple[float, ...] = (0.0, 0.5, 2.0),
         **kw: Any) -> list[Setting]:
    """The calibration table's cells: every number of clusters by every seed SD (relative to the per-cluster SD)."""
    return [Setting(n_clusters=n, seed_factor=f, **kw) for n in clusters for f in seed_factors]


def table_lines(cells: list[CellResult]) -> list[str]:
    """The calibration table as Markdown."""
    first = cells[0]
    lo, hi = binomial_interval(first.n_sims, first.setting.alpha)
    head = [f"alpha = {first.setting.alpha:g}, {first.n_sims} simulated studies per cell under H0 and as many under "
            f"an effect of {first.setting.effect:g} per-cluster SD; binomial 99% interval of the rejection rate "
            f"under H0: [{lo:.4f}, {hi:.4f}]", "",
            "| clusters | seed SD / cluster SD | reject_h0 under H0 | holds alpha | old clip-level | seed-ignoring | "
            "power | 95% CI coverage |",
            "|---:|---:|---:|:--|---:|---:|---:|---:|"]
    rows = []
    for c in cells:
        s = c.setting
        rows.append(f"| {s.n_clusters} | {s.seed_factor:g} | {c.reject_h0.rate:.4f} | "
                    f"{'yes' if c.holds_alpha else 'NO'} | {c.old_clip_level.rate:.4f} | {c.seed_ignoring.rate:.4f} | "
                    f"{c.power.rate:.4f} | {c.coverage.rate:.4f}{'' if c.coverage_ok else ' (outside 93-97%)'} |")
    return head + rows
