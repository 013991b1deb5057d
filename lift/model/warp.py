"""Backward warping: sample an image at positions displaced by a per-pixel flow.

Convention (shared with the synthetic data's ``flow_gt``): ``flow[:, :, y, x] = (u, v)`` in pixels
means that the output pixel ``(x, y)`` takes its value from the input at ``(x + u, y + v)``.
Bilinear sampling with border padding (RIFE's choice: out-of-frame samples repeat the edge
rather than fading to black, which would look like an occlusion to the fusion).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Grids keyed by (kind, height, width, device, dtype). Warping runs several times per block and
# per reference frame, and the grid is the same every time.
_GRID_CACHE: dict[tuple[str, int, int, torch.device, torch.dtype], torch.Tensor] = {}
_GRID_CACHE_MAX = 32


def _cached_grid(kind: str, height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[1, 2, H, W] (x first) as plain (non-differentiable) data: ``"pixel"`` coordinates, or the
    ``"normalized"`` grid_sample coordinates in [-1, 1] (align_corners=True)."""
    key = (kind, height, width, device, dtype)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        if len(_GRID_CACHE) >= _GRID_CACHE_MAX:
            _GRID_CACHE.clear()
        # Built in float32 and cast: bf16 cannot represent every integer pixel index above 256.
        if kind == "pixel":
            ys = torch.arange(height, device=device, dtype=torch.float32)
            xs = torch.arange(width, device=device, dtype=torch.float32)
        else:
            ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=torch.float32)
            xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=torch.float32)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack((gx, gy), dim=0).unsqueeze(0).to(dtype)
        _GRID_CACHE[key] = grid
    return grid


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp ``image`` [B, C, H, W] with ``flow`` [B, 2, H, W] (pixels, backward); returns [B, C, H, W].

    Exact (up to float rounding) for integer flows, identity for a zero flow. The computation
    runs in the wider of the two input dtypes (sampling coordinates of large frames need more
    than bf16's 8 mantissa bits), and the result has that dtype.
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"backward_warp: expected image [B, C, H, W] and flow [B, 2, H, W], "
            f"got {tuple(image.shape)} and {tuple(flow.shape)}")
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"backward_warp: image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    return backward_warp_many(image, flow.unsqueeze(1)).squeeze(1)


def backward_warp_many(image: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
    """Warp ``image`` [B, C, H, W] with each of ``flows`` [B, K, 2, H, W]; returns [B, K, C, H, W].

    One sampling call for all K flows, without K copies of the image (a search over candidate
    flows, lift.model.matching, warps one frame dozens of times)."""
    if image.dim() != 4 or flows.dim() != 5 or flows.shape[2] != 2 or flows.shape[0] != image.shape[0] \
            or flows.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"backward_warp_many: expected image [B, C, H, W] and flows [B, K, 2, H, W] of the same "
                         f"batch and size, got {tuple(image.shape)} and {tuple(flows.shape)}")
    batch, k, _, height, width = flows.shape
    # Coordinates always in float32 at least: under autocast the flow may arrive in bf16.
    dtype = torch.promote_types(torch.promote_types(image.dtype, flows.dtype), torch.float32)
    # The published RIFE's arithmetic (a [-1, 1] grid plus the flow divided by half the frame
    # size), so that the published model's output is reproduced to the last bit (test_rife_hd).
    base = _cached_grid("normalized", height, width, image.device, dtype)
    flows = flows.to(dtype)
    gx = base[:, 0].unsqueeze(1) + flows[:, :, 0] / (max(width - 1, 1) / 2.0)
    gy = base[:, 1].unsqueeze(1) + flows[:, :, 1] / (max(height - 1, 1) / 2.0)
    # The K sampling grids stacked along the height: one [B, K*H, W] grid over the same image.
    grid = torch.stack((gx, gy), dim=-1).reshape(batch, k * height, width, 2)
    device_type = image.device.type
    if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
        # Autocast would resample in bf16/fp16; keep the sampling in the promoted dtype.
        with torch.autocast(device_type=device_type, enabled=False):
            out = _sample(image.to(dtype), grid)
    else:
        out = _sample(image.to(dtype), grid)
    return out.view(batch, -1, k, height, width).transpose(1, 2)


def samples_inside(flow: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] in the flow's dtype: 1 where the backward flow [B, 2, H, W] samples inside the
    frame, 0 where backward_warp would repeat the border instead."""
    height, width = flow.shape[-2:]
    pos = _cached_grid("pixel", height, width, flow.device, flow.dtype) + flow
    x, y = pos[:, 0], pos[:, 1]
    return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).unsqueeze(1).to(flow.dtype)


def _sample(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
