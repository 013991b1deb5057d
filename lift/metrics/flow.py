"""Optical-flow quality of the network's flows from the target to its inputs.

Direction convention (shared with ``lift.model.warp`` and the synthetic data's ``flow_gt``): every
flow here is a *backward* flow from the target to an input frame, in pixels, channels ``(u, v)`` =
``(x, y)``: target pixel ``(x, y)`` corresponds to input pixel ``(x + u, y + v)``, so
``backward_warp(input, flow)`` reproduces the target.

- :func:`epe_stats`: end-point error against a ground-truth flow (mean, and the fraction of pixels
  with an error above 1 and above 3 px), over the pixels a ``valid`` mask keeps (occlusion-aware:
  synthetic data marks target pixels that are hidden in the input with 0).
- :func:`warp_error`: photometric error of the target against the input warped by the flow, for
  real footage without ground truth (mean absolute error over channels and the pixels whose
  source position lies inside the frame).
- :func:`tvl1_flow` / :func:`reference_epe`: agreement with a classical reference flow,
  ``skimage.registration.optical_flow_tvl1(reference_image=target, moving_image=input)``.
  skimage returns ``(v, u)`` (row, column) such that ``reference[r, c] ~ moving[r + v, c + u]``:
  the same backward direction as ours, reordered here to ``(u, v)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.registration import optical_flow_tvl1

from lift.model.warp import backward_warp

EPE_THRESHOLDS = (1.0, 3.0)


def _as_batch(x: torch.Tensor, tail: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Flatten leading dims so that ``x`` is ``[B, *last tail dims]``; returns the leading shape."""
    lead = tuple(x.shape[: x.dim() - tail])
    return x.reshape(-1, *x.shape[x.dim() - tail:]), lead


def _check_flow(flow: torch.Tensor, name: str) -> None:
    if flow.dim() < 3 or flow.shape[-3] != 2:
        raise ValueError(f"{name}: expected a flow [..., 2, H, W] (u, v in pixels), got shape {tuple(flow.shape)}")


def _mask(valid: torch.Tensor | None, like: torch.Tensor, name: str) -> torch.Tensor:
    """``valid`` ([..., 1, H, W] or [..., H, W]) -> float mask [..., H, W]; all ones if None."""
    target_shape = like.shape[:-3] + like.shape[-2:]
    if valid is None:
        return torch.ones(target_shape, dtype=torch.float32, device=like.device)
    if valid.dim() == like.dim() and valid.shape[-3] == 1:
        valid = valid.squeeze(-3)
    if tuple(valid.shape) != tuple(target_shape):
        raise ValueError(f"{name}: valid mask shape {tuple(valid.shape)} does not match flow shape {tuple(like.shape)}")
    return (valid > 0.5).to(torch.float32)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [..., H, W] over ``mask`` per leading index; NaN where nothing is valid."""
    total = (values * mask).flatten(-2).sum(-1)
    count = mask.flatten(-2).sum(-1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def endpoint_error(flow: torch.Tensor, flow_gt: torch.Tensor) -> torch.Tensor:
    """Per-pixel end-point error ``||flow - flow_gt||_2``: [..., H, W]."""
    _check_flow(flow, "endpoint_error")
    if flow.shape != flow_gt.shape:
        raise ValueError(f"endpoint_error: flow {tuple(flow.shape)} and ground truth {tuple(flow_gt.shape)} differ")
    diff = flow.to(torch.float32) - flow_gt.to(torch.float32)
    return diff.square().sum(dim=-3).sqrt()


def epe_stats(flow: torch.Tensor, flow_gt: torch.Tensor, valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """EPE statistics per flow: ``{"epe", "epe_gt1", "epe_gt3"}``, each of the leading shape of ``flow``.

    ``epe`` is the mean end-point error (px); ``epe_gt1`` / ``epe_gt3`` the fraction of pixels with
    an error above 1 / 3 px. Only pixels with ``valid`` = 1 count (occluded ones are excluded); a
    flow with no valid pixel gives NaN.
    """
    err = endpoint_error(flow, flow_gt)
    mask = _mask(valid, flow, "epe_stats")
    out = {"epe": _masked_mean(err, mask)}
    for thr in EPE_THRESHOLDS:
        out[f"epe_gt{int(thr)}"] = _masked_mean((err > thr).to(torch.float32), mask)
    return out


def warp_error(flow: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
               valid: torch.Tensor | None = None) -> torch.Tensor:
    """Photometric error of a backward flow: mean ``|backward_warp(source, flow) - target|``.

    ``flow`` [..., 2, H, W] from the target to ``source`` [..., C, H, W]; ``target`` is [..., C, H, W]
    or [C, H, W]-broadcastable to it. Averaged over channels and over the pixels whose source
    position lies inside the frame (the warp repeats the border outside it, which is no evidence
    either way) and, if given, ``valid``. Returns the leading shape of ``flow``.
    """
    _check_flow(flow, "warp_error")
    if source.shape[:-3] != flow.shape[:-3] or source.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"warp_error: source {tuple(source.shape)} does not match flow {tuple(flow.shape)}")
    target = target.expand_as(source)
    flat_flow, lead = _as_batch(flow.to(torch.float32), 3)
    flat_src, _ = _as_batch(source.to(torch.float32), 3)
    flat_tgt, _ = _as_batch(target.to(torch.float32), 3)
    warped = backward_warp(flat_src, flat_flow)
    err = (warped - flat_tgt).abs().mean(dim=1)  # [B, H, W]
    h, w = flat_flow.shape[-2:]
    xs = torch.arange(w, device=flow.device, dtype=torch.float32).view(1, 1, w)
    ys = torch.arange(h, device=flow.device, dtype=torch.float32).view(1, h, 1)
    px = xs + flat_flow[:, 0]
    py = ys + flat_flow[:, 1]
    inside = ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).to(torch.float32)
    if valid is not None:
        inside = inside * _as_batch(_mask(valid, flow, "warp_error"), 2)[0]
    return _masked_mean(err, inside).reshape(lead)


def to_gray(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [0, 1] -> float32 numpy [B, H, W], ITU-R 709 luma (skimage.color.rgb2gray)."""
    arr = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    return rgb2gray(arr).astype(np.float32)


def tvl1_flow(target: torch.Tensor, source: torch.Tensor, **tvl1_kwargs: Any) -> torch.Tensor:
    """Classical reference flow from ``target`` to ``source`` ([B, 3, H, W] each): [B, 2, H, W] (u, v).

    Runs ``skimage.registration.optical_flow_tvl1`` on the CPU, one pair at a time (it is the slow
    part of flow evaluation: see ``python -m lift.bench metrics``); returns on the input device.
    """
    if target.shape != source.shape or target.dim() != 4:
        raise ValueError(f"tvl1_flow: expected two [B, 3, H, W] tensors, got {tuple(target.shape)} and {tuple(source.shape)}")
    ref = to_gray(target)
    mov = to_gray(source)
    flows = []
    for r, m in zip(ref, mov):
        v, u = optical_flow_tvl1(r, m, **tvl1_kwargs)  # skimage order: rows (y) first
        flows.append(np.stack([u, v]))
    return torch.from_numpy(np.stack(flows).astype(np.float32)).to(target.device)


def reference_epe(flow: torch.Tensor, target: torch.Tensor, source: torch.Tensor,
                  **tvl1_kwargs: Any) -> torch.Tensor:
    """Mean EPE [B] between ``flow`` [B, 2, H, W] (target -> source) and the TV-L1 reference flow."""
    ref = tvl1_flow(target, source, **tvl1_kwargs)
    return endpoint_error(flow.to(ref.device), ref).flatten(1).mean(dim=1)
