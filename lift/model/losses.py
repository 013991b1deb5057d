"""Training losses of LIFT: ``LIFTLoss(loss_cfg)(pred, aux, target) -> (total, components)``.

Terms (weights in ``LossConfig``; a weight of 0 skips the computation and the component):
  reconstruction  Laplacian-pyramid L1 of the final prediction (RIFE's L_rec)
  teacher         Laplacian-pyramid L1 of the teacher's prediction (RIFE's L_rec^Tea)
  distillation    the model's ``aux["distill_loss"]`` (RIFE's L_dis)
  lpips           LPIPS distance (``lift.metrics.lpips``), its network loaded on first use
  census          soft census (ternary) transform distance, robust to brightness changes
  smoothness      edge-aware first-order smoothness of every flow in ``aux["flows"]``
  reference_reconstruction  the model's ``aux["reference_recon_loss"]``: L1 of each warped
                  reference against the target (window > 3 only; trains the reference flows)
  anchor_reconstruction  Laplacian-pyramid L1 of the anchors' mask-fused estimate, before any
                  reference and the refinement U-Net (every window, so all arms share one objective)
Teacher and distillation terms need the teacher outputs, which exist only when the model was
called with the target; without them (inference) those two terms are skipped.
All terms are computed in float32 with autocast disabled, whatever precision the model ran in.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from lift.config import LossConfig
from lift.metrics.lpips import load_lpips, lpips_distance

# Edge-aware smoothness: how fast the penalty fades across image edges (images in [0, 1]).
SMOOTHNESS_EDGE_WEIGHT = 10.0
CENSUS_PATCH = 7


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _gauss_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype) / 16.0
    k2 = torch.outer(k1, k1)
    return k2.expand(channels, 1, 5, 5).contiguous()


def laplacian_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels (fine to coarse) and the low-pass residual; at most `levels` tensors.

    Stops early when the image gets smaller than two pixels, so tiny crops still work.
    """
    kernel = _gauss_kernel(image.shape[1], image.device, image.dtype)
    out = []
    current = image
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 2:
            break
        blurred = F.conv2d(F.pad(current, (2, 2, 2, 2), mode="replicate"), kernel, groups=current.shape[1])
        down = blurred[..., ::2, ::2]
        up = F.interpolate(down, size=current.shape[-2:], mode="bilinear", align_corners=False)
        out.append(current - up)
        current = down
    out.append(current)
    return out


def laplacian_l1(pred: torch.Tensor, target: torch.Tensor, levels: int) -> torch.Tensor:
    """Sum over pyramid levels of the mean absolute difference (the pyramid is linear, so it is
    built once on the difference)."""
    return sum(level.abs().mean() for level in laplacian_pyramid(pred - target, levels))


def _census(image: torch.Tensor) -> torch.Tensor:
    """Soft census transform of the luma (0..255 scale): for every pixel, a smooth sign of the
    difference to each neighbour of a 7x7 patch."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    gray = (image * weights).sum(1, keepdim=True) * 255.0
    k = CENSUS_PATCH
    eye = torch.eye(k * k, device=image.device, dtype=image.dtype).view(k * k, 1, k, k)
    patches = F.conv2d(gray, eye, padding=k // 2)
    diff = patches - gray
    return diff / torch.sqrt(0.81 + diff ** 2)


def census_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean soft Hamming distance between census transforms, ignoring the zero-padded border."""
    dist = (_census(pred) - _census(target)) ** 2
    dist = (dist / (0.1 + dist)).mean(1, keepdim=True)
    border = CENSUS_PATCH // 2
    inner = dist[..., border:-border, border:-border] if min(dist.shape[-2:]) > 2 * border else dist
    return inner.mean()


def smoothness_loss(flows: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware first-order smoothness of flows [B, N, 2, H, W] guided by image [B, 3, H, W]:
    flow gradients cost less where the image has an edge (motion boundaries follow edges)."""
    b, n, c, h, w = flows.shape
    flat = flows.reshape(b, n * c, h, w)
    wx = torch.exp(-SMOOTHNESS_EDGE_WEIGHT * (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True))
    wy = torch.exp(-SMOOTHNESS_EDGE_WEIGHT * (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True))
    gx = (flat[..., :, 1:] - flat[..., :, :-1]).abs()
    gy = (flat[..., 1:, :] - flat[..., :-1, :]).abs()
    return (gx * wx).mean() + (gy * wy).mean()


class LIFTLoss(nn.Module):
    """Weighted sum of the LIFT training terms; see the module docstring.

    forward(pred [B, 3, H, W], aux (the model's dict), target [B, 3, H, W])
    -> (total 0-d tensor, {term name: unweighted 0-d tensor} for every term with weight > 0).
    """

    def __init__(self, loss_cfg: LossConfig, lpips_weights: str | None = None) -> None:
        super().__init__()
        self.cfg = loss_cfg
        self.lpips_weights = lpips_weights
        # The LPIPS networks (one per device) are frozen metrics, not part of the loss' state: kept
        # in a plain dict, out of the module registry, so they never land in checkpoints or in
        # optimiser parameter lists.
        self._lpips_models: dict[str, nn.Module] = {}

    def _lpips_model(self, device: torch.device) -> nn.Module:
        key = str(device)
        if key not in self._lpips_models:
            model = load_lpips(weights_path=self.lpips_weights, device=device)
            model.eval()
            model.requires_grad_(False)
            self._lpips_models[key] = model
        return self._lpips_models[key]

    def forward(self, pred: torch.Tensor, aux: dict, target: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
            raise ValueError(f"LIFTLoss: pred and target must both be [B, 3, H, W]; "
                             f"got {tuple(pred.shape)} and {tuple(target.shape)}")
        cfg = self.cfg
        with _no_autocast(pred.device):
            pred = pred.float()
            target = target.float()
            terms: dict[str, torch.Tensor] = {}
            weights: dict[str, float] = {}
            if cfg.reconstruction > 0:
                terms["reconstruction"] = laplacian_l1(pred, target, cfg.pyramid_levels)
                weights["reconstruction"] = cfg.reconstruction
            if cfg.teacher > 0 and "teacher_pred" in aux:
                terms["teacher"] = laplacian_l1(aux["teacher_pred"].float(), target, cfg.pyramid_levels)
                weights["teacher"] = cfg.teacher
            if cfg.distillation > 0 and "distill_loss" in aux:
                terms["distillation"] = aux["distill_loss"].float()
                weights["distillation"] = cfg.distillation
            if cfg.lpips > 0:
                terms["lpips"] = lpips_distance(self._lpips_model(pred.device), pred, target).mean()
                weights["lpips"] = cfg.lpips
            if cfg.census > 0:
                terms["census"] = census_loss(pred, target)
                weights["census"] = cfg.census
            if cfg.smoothness > 0:
                if "flows" not in aux:
                    raise KeyError("LIFTLoss: loss.smoothness > 0 needs aux['flows'] from the model")
                terms["smoothness"] = smoothness_loss(aux["flows"].float(), target)
                weights["smoothness"] = cfg.smoothness
            if cfg.anchor_reconstruction > 0:
                # Every window: were it window > 3 only, window 3 would train on another objective
                # and a study would compare objectives, not context lengths.
                terms["anchor_reconstruction"] = laplacian_l1(aux["student_preds"][-1].float(), target,
                                                              cfg.pyramid_levels)
                weights["anchor_reconstruction"] = cfg.anchor_reconstruction
            if cfg.reference_reconstruction > 0 and "reference_recon_loss" in aux:
                terms["reference_reconstruction"] = aux["reference_recon_loss"].float()
                weights["reference_reconstruction"] = cfg.reference_reconstruction
            total = sum(weights[k] * v for k, v in terms.items())
        return total, terms
