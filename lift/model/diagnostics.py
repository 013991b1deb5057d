"""Diagnostics of the reference path, computed from the model's ``aux`` dict during training.

``reference_diagnostics(aux, batch)`` returns scalars (empty for a model without references):

  share                  the references' mean fusion weight (their share of the fused frame)
  share_anchors_disagree the same, only where the two warped anchors disagree (mean absolute
                         difference > ANCHOR_DISAGREEMENT): where the anchors alone cannot be right
  anchors_disagree_fraction  the fraction of pixels counted in the previous line
  flow_magnitude         mean length of the refined reference flows (pixels)
  flow_epe, flow_epe_extrapolated  end-point error of the refined and of the extrapolated reference
                         flows against the exact flow, where the batch has one (``flow_gt`` and
                         ``valid`` of the synthetic and known-answer datasets), over valid pixels

``reference_share_image(aux)`` is the first sample's reference share as a grey image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

# Mean absolute RGB difference (images in [0, 1]) above which the two warped anchors disagree.
ANCHOR_DISAGREEMENT = 0.1


def _mean_where(values: Tensor, mask: Tensor) -> float | None:
    total = float(mask.sum())
    return float((values * mask).sum()) / total if total > 0 else None


@torch.no_grad()
def reference_diagnostics(aux: dict[str, Any], batch: dict[str, Any]) -> dict[str, float | None]:
    weights, flows = aux.get("fusion_weights"), aux.get("flows")
    if not isinstance(weights, Tensor) or weights.shape[1] <= 2 or "reference_init_flows" not in aux:
        return {}
    weights = weights.float()
    share = weights[:, 2:].sum(1)  # [B, 1, H, W]
    warped = aux["warped"].float()
    disagree = ((warped[:, 0] - warped[:, 1]).abs().mean(1, keepdim=True) > ANCHOR_DISAGREEMENT).float()
    ref_flows = flows[:, 2:].float()
    out: dict[str, float | None] = {
        "share": float(share.mean()),
        "share_anchors_disagree": _mean_where(share, disagree),
        "anchors_disagree_fraction": float(disagree.mean()),
        "flow_magnitude": float(ref_flows.norm(dim=2).mean()),
    }
    gt, valid = batch.get("flow_gt"), batch.get("valid")
    if isinstance(gt, Tensor) and isinstance(valid, Tensor) and gt.shape[1] == flows.shape[1]:
        gt, mask = gt[:, 2:].float(), valid[:, 2:].float()
        out["flow_epe"] = _mean_where((ref_flows - gt).norm(dim=2, keepdim=True), mask)
        init = aux["reference_init_flows"].float()
        out["flow_epe_extrapolated"] = _mean_where((init - gt).norm(dim=2, keepdim=True), mask)
    return out


@torch.no_grad()
def reference_share_image(aux: dict[str, Any]) -> Tensor | None:
    """[3, H, W] grey image of the first sample's reference share (white = all references)."""
    weights = aux.get("fusion_weights")
    if not isinstance(weights, Tensor) or weights.shape[1] <= 2:
        return None
    return weights[0, 2:].float().sum(0).clamp(0, 1).expand(3, -1, -1).cpu()
