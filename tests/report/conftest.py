"""Synthetic study folders that follow the per-sample table contract of ARCHITECTURE.md exactly."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from lift.arms import arm_key, changed_factors, one_at_a_time
from lift.report import ReportOptions

DATASET = "video_folder"
COLUMNS = ["sample_id", "video_id", "cluster_id", "target_index", "timestep", "psnr", "ssim", "lpips", "epe", "warp_error",
           "arm", "split", "seed", "trial_id"]


def cluster_of(video: str) -> str:
    """Two clips per independent source: clip00 and clip01 come from src00 (other names are their own source)."""
    return f"src{int(video[4:]) // 2:02d}" if video.startswith("clip") else video


def sample_ids(videos: Sequence[str], targets: Sequence[int]) -> list[tuple[str, str, int]]:
    return [(f"{DATASET}/{v}/{t:06d}", v, t) for v in videos for t in targets]


def make_rows(
    arm: str,
    samples: list[tuple[str, str, int]],
    *,
    split: str = "test",
    seed: int = 0,
    trial_id: str = "",
    gain_db: float = 0.0,
    video_gain_sd: float = 0.3,
    rng_seed: int = 0,
    flow: bool = True,
) -> pd.DataFrame:
    """Metric rows for one (arm, seed): per-video difficulty shared by all arms plus an arm gain that
    varies by video, plus frame noise. Higher gain = better on every metric."""
    videos = sorted({v for _, v, _ in samples})
    base_rng = np.random.default_rng(1234)  # same difficulty for every arm: the pairing matters
    difficulty = dict(zip(videos, base_rng.normal(30.0, 3.0, len(videos))))
    arm_rng = np.random.default_rng(abs(hash((arm, split))) % 2**32 if rng_seed is None else rng_seed)
    video_gain = dict(zip(videos, gain_db + arm_rng.normal(0.0, video_gain_sd, len(videos))))
    noise = np.random.default_rng(rng_seed + 7919 * seed + 17).normal(0.0, 0.4, len(samples))
    psnr = np.array([difficulty[v] + video_gain[v] for _, v, _ in samples]) + noise
    return pd.DataFrame({
        "sample_id": [s for s, _, _ in samples],
        "video_id": [v for _, v, _ in samples],
        "cluster_id": [cluster_of(v) for _, v, _ in samples],
        "target_index": np.array([t for _, _, t in samples], dtype=np.int64),
        "timestep": np.full(len(samples), 0.5, dtype=np.float32),
        "psnr": psnr,
        "ssim": 1.0 / (1.0 + np.exp(-(psnr - 25.0) / 4.0)),
        "lpips": np.exp(-(psnr - 20.0) / 8.0) * 0.5,
        "epe": np.exp(-(psnr - 28.0) / 5.0) if flow else np.nan,
        "warp_error": np.exp(-(psnr - 26.0) / 6.0) * 0.05 if flow else np.nan,
        "arm": arm,
        "split": split,
        "seed": np.int64(seed),
        "trial_id": trial_id,
    })[COLUMNS]


def write(df: pd.DataFrame, folder: Path, csv: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if csv:
        path = folder / "samples.csv"
        df.to_csv(path, index=False)
    else:
        path = folder / "samples.parquet"
        df.to_parquet(path, index=False)
    return path


def build_study(
    root: Path,
    *,
    n_videos: int = 16,
    targets: Sequence[int] = (4, 9, 14),
    arms_gain: dict[str, float] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    baselines: bool = True,
    val: bool = True,
    summary: bool = True,
) -> Path:
    """A study folder laid out like studies/context_ablation.py's: confirm/<arm>/seed<k>, baselines/, tune/."""
    arms_gain = arms_gain if arms_gain is not None else {
        "window=3": 0.0, "window=7,offset=1": 0.4, "window=15,offset=1": 0.8, "window=15,offset=2": 1.0,
    }
    videos = [f"clip{i:02d}" for i in range(n_videos)]
    samples = sample_ids(videos, targets)
    for k, (arm, gain) in enumerate(arms_gain.items()):
        for seed in seeds:
            df = make_rows(arm, samples, seed=seed, trial_id=f"confirm_{k}_s{seed}", gain_db=gain, rng_seed=k)
            write(df, root / "confirm" / arm.replace(",", "_").replace("=", "") / f"seed{seed}")
    if baselines:
        b = pd.concat([
            make_rows("baseline=repeat", samples, gain_db=-6.0, rng_seed=50, flow=False),
            make_rows("baseline=blend", samples, gain_db=-3.0, rng_seed=51, flow=False),
        ], ignore_index=True)
        write(b, root / "baselines")
    if val:
        val_samples = sample_ids([f"valclip{i}" for i in range(4)], targets)
        for k, (arm, gain) in enumerate(arms_gain.items()):
            for trial in range(2):
                df = make_rows(arm, val_samples, split="val", trial_id=f"t{k}_{trial}", gain_db=gain + 0.1 * trial,
                               rng_seed=100 + k)
                write(df, root / "tune" / arm.replace(",", "_").replace("=", "") / f"trial{trial}")
    if summary:
        trials = [{"arm": arm, "trial_id": f"t{k}_{t}", "status": "TERMINATED", "best_val_psnr": 30.0 + gain + 0.1 * t,
                   "config": {"optim.lr": 3e-4 * (t + 1), "loss.distill_weight": 0.01}}
                  for k, (arm, gain) in enumerate(arms_gain.items()) for t in range(2)]
        trials.append({"arm": "window=7,offset=1", "trial_id": "t_err", "status": "ERROR", "best_val_psnr": None,
                       "config": {}})
        (root / "study_summary.json").write_text(json.dumps({
            "arms": list(arms_gain), "trials": trials, "failed_trials": 1, "optuna_storage": str(root / "optuna.db"),
        }))
    return root


@pytest.fixture()
def study_dir(tmp_path: Path) -> Path:
    return build_study(tmp_path / "study")


@pytest.fixture()
def options() -> Callable[..., ReportOptions]:
    """ReportOptions with few permutations (fast, and enough for the p-values these tests read)."""
    def make(**kw: Any) -> ReportOptions:
        return ReportOptions(n_permutations=200, **kw)
    return make


@pytest.fixture()
def synth() -> SimpleNamespace:
    """The table builders above, for tests that need parameters (tests do not import conftest modules)."""
    return SimpleNamespace(build_study=build_study, make_rows=make_rows, sample_ids=sample_ids, write=write,
                           cluster_of=cluster_of, build_ablation_study=build_ablation_study)


# A one_at_a_time ablation around a window-15 base, as configs/study_ablation.yaml lays it out: the base arm,
# then one arm per factor change (window 15 -> 3, loss.census 0.1 -> 0, loss.lpips 0.1 -> 0).
ABLATION_FACTORS = {"data.window": [15, 3], "data.temporal_offset": [1], "loss.census": [0.1, 0.0],
                    "loss.lpips": [0.1, 0.0]}


def build_ablation_study(root: Path, *, gains: dict[str, float], n_videos: int = 24, seeds: Sequence[int] = (0, 1, 2),
                         report: dict | None = None, baselines: bool = True) -> Path:
    """A one_at_a_time study folder with study_summary.json as lift.tune.study writes it (config, design,
    base_arm, arms with factors and changes, family). ``gains`` maps the changed factor ("" for the base arm)
    to the arm's gain in dB, so the test knows which changes have an effect."""
    base = {k: v[0] for k, v in ABLATION_FACTORS.items()}
    arms = one_at_a_time(ABLATION_FACTORS, base)
    videos = [f"clip{i:02d}" for i in range(n_videos)]
    samples = sample_ids(videos, (4, 9, 14))
    records = []
    for k, values in enumerate(arms):
        key, changes = arm_key(values), changed_factors(values, base)
        gain = gains["" if not changes else changes[0]]
        for seed in seeds:
            df = make_rows(key, samples, seed=seed, trial_id=f"confirm_{k}_s{seed}", gain_db=gain, rng_seed=k)
            write(df, root / "confirm" / f"arm{k}" / f"seed{seed}")
        records.append({"key": key, "factors": values, "changes": changes, "best_val_psnr": 30.0 + gain})
    if baselines:
        write(pd.concat([make_rows("baseline=repeat", samples, gain_db=-6.0, rng_seed=50, flow=False),
                         make_rows("baseline=blend", samples, gain_db=-3.0, rng_seed=51, flow=False)],
                        ignore_index=True), root / "baselines")
    report = {"endpoints": ["psnr", "ssim", "lpips"], "procedure": "fixed_sequence", "alpha": 0.05,
              "sesoi": {"psnr": 0.1, "ssim": 0.001, "lpips": 0.001}, "treatment": None, "control": None,
              "ablation_family": "secondary", **(report or {})}
    family = {k: report[k] for k in ("endpoints", "procedure", "alpha", "sesoi")}
    (root / "study_summary.json").write_text(json.dumps({
        "study": "ablation-test", "complete": True,
        "config": {"name": "ablation-test", "arms": {"design": "one_at_a_time", "factors": ABLATION_FACTORS,
                                                     "base": {}}, "report": report},
        "design": {"n_test_clusters": n_videos // 2}, "base_arm": arm_key(base), "arms": records,
        "trials": [], "confirm": [], "failed_trials": 0, "family": family,
    }))
    return root
