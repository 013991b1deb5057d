"""Deterministic translating textures with exact ground-truth flow, for the model tests.

A window is cut from a large smooth random canvas: the frame at source offset ``o`` from the
target is the canvas shifted by ``velocity * o`` pixels, so the backward flow target -> frame is
exactly ``-velocity * o`` and nothing is occluded inside the frame (pixels whose source lies
outside the frame are marked invalid).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from lift.window import WindowSpec


@dataclass
class TranslatingWindow:
    frames: torch.Tensor  # [N, 3, H, W]
    times: torch.Tensor  # [N]
    timestep: torch.Tensor  # 0-d
    target: torch.Tensor  # [3, H, W]
    flow_gt: torch.Tensor  # [N, 2, H, W], backward flow target -> input
    valid: torch.Tensor  # [N, 1, H, W]


def smooth_canvas(height: int, width: int, seed: int) -> torch.Tensor:
    """Random RGB texture in [0, 1], blurred so that bilinear interpolation is accurate."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, height // 4 + 2, width // 4 + 2, generator=gen)
    canvas = F.interpolate(noise, size=(height + 8, width + 8), mode="bicubic", align_corners=False)
    return canvas[0, :, 4:-4, 4:-4].clamp(0, 1)


def translating_window(window: int, size: tuple[int, int] = (32, 32), velocity: tuple[int, int] = (2, 1),
                       temporal_offset: int = 1, gap: int = 2, a: int | None = None, seed: int = 0
                       ) -> TranslatingWindow:
    """One window of a texture moving by integer `velocity` (vx, vy) pixels per source frame."""
    spec = WindowSpec(window=window, temporal_offset=temporal_offset, gap=gap)
    offsets = spec.input_offsets(a)
    height, width = size
    vx, vy = velocity
    reach = max(abs(o) for o in offsets)
    margin_x, margin_y = abs(vx) * reach, abs(vy) * reach
    canvas = smooth_canvas(height + 2 * margin_y, width + 2 * margin_x, seed)

    def frame_at(offset: int) -> torch.Tensor:
        # Content moves by +velocity per frame: the frame at `offset` shows the canvas shifted back.
        y0 = margin_y - vy * offset
        x0 = margin_x - vx * offset
        return canvas[:, y0:y0 + height, x0:x0 + width]

    frames = torch.stack([frame_at(o) for o in offsets])
    target = frame_at(0)
    flow = torch.zeros(len(offsets), 2, height, width)
    valid = torch.zeros(len(offsets), 1, height, width)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    for i, o in enumerate(offsets):
        # Target pixel p shows canvas[p + margin]; frame o shows it at p + velocity * o.
        u, v = vx * o, vy * o
        flow[i, 0], flow[i, 1] = float(u), float(v)
        inside = (xs + u >= 0) & (xs + u <= width - 1) & (ys + v >= 0) & (ys + v <= height - 1)
        valid[i, 0] = inside.float()
    return TranslatingWindow(frames, torch.tensor(spec.input_times(a)), torch.tensor(spec.timestep(a)),
                             target, flow, valid)


def batch_of(windows: list[TranslatingWindow]) -> tuple[torch.Tensor, ...]:
    return (torch.stack([w.frames for w in windows]), torch.stack([w.times for w in windows]),
            torch.stack([w.timestep for w in windows]), torch.stack([w.target for w in windows]))


VELOCITIES = [(2, 1), (-1, 1), (1, -2), (0, 1), (-2, -1), (1, 2)]


def translating_batch(window: int, a: int | None = None, gap: int = 2, batch: int = 2,
                      size: tuple[int, int] = (32, 32)) -> tuple[torch.Tensor, ...]:
    """(frames [B, N, 3, H, W], times [B, N], timestep [B], target [B, 3, H, W]) of `batch`
    textures moving with different velocities."""
    wins = [translating_window(window, size, VELOCITIES[i % len(VELOCITIES)], gap=gap, a=a, seed=i)
            for i in range(batch)]
    return batch_of(wins)


@pytest.fixture
def make_window():
    return translating_window


@pytest.fixture
def make_batch():
    return translating_batch
