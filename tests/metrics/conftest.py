"""Real frames for the metric tests: the first frames of the bundled carphone clip (176x144)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def real_frames(carphone_clip: Path, first_frames) -> torch.Tensor:
    return first_frames(carphone_clip, 8)
