"""Real frames for the metric tests: the first frames of the bundled carphone clip (176x144)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch


def decode_frames(path: Path, count: int) -> torch.Tensor:
    """The first `count` frames of a video as float32 [count, 3, H, W] in [0, 1]."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="session")
def real_frames(carphone_clip: Path) -> torch.Tensor:
    return decode_frames(carphone_clip, 8)
