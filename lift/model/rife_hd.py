"""The published RIFE HD anchor path (ECCV2022-RIFE ``train_log/IFNet_HDv3.py``), written from its
structure with its parameter names and shapes, so that the published ``flownet.pkl`` loads
strictly (``lift.model.pretrained``; ``tests/model/test_rife_hd.py`` checks the output against the
official forward).

Three IFBlocks (c = 90) refine the two backward flows target->anchors and a fusion-mask logit at
scales 4, 2, 1 (divided by the ``scale`` option for high resolution). Each block is run in both
directions (anchors swapped, mask negated) and the two answers averaged, which makes the model
symmetric in its anchors. It has no timestep input: it interpolates the middle frame only. The
teacher block (``block_tea``) additionally sees the target; it exists for fine-tuning with RIFE's
privileged distillation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lift.model.warp import backward_warp

HD_CHANNELS = 90
HD_SCALES = (4, 2, 1)
# The only timestep the published model interpolates.
HD_TIMESTEP = 0.5
# The official inference pads frames with zeros at the right and bottom to a multiple of 32.
HD_SIZE_MULTIPLE = 32


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """HDv3's conv: 3x3 with bias + PReLU (``conv`` in IFNet_HDv3.py)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), nn.PReLU(out_ch))


def _upsample_head(channels: int, out_ch: int) -> nn.Sequential:
    """Two stride-2 transposed convs back to the block's input resolution (``conv1`` / ``conv2``)."""
    return nn.Sequential(nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1), nn.PReLU(channels // 2),
                         nn.ConvTranspose2d(channels // 2, out_ch, 4, 2, 1))


def _rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=False)


class IFBlockHD(nn.Module):
    """One HDv3 IFBlock: inputs at 1/scale, 4x down (two strided convs), four residual pairs of
    convs, 4x up; a residual flow [B, 4] in full-resolution pixels and a mask-logit residual [B, 1]."""

    def __init__(self, in_channels: int, channels: int = HD_CHANNELS) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, channels // 2, 2), _conv(channels // 2, channels, 2))
        self.convblock0 = nn.Sequential(_conv(channels, channels), _conv(channels, channels))
        self.convblock1 = nn.Sequential(_conv(channels, channels), _conv(channels, channels))
        self.convblock2 = nn.Sequential(_conv(channels, channels), _conv(channels, channels))
        self.convblock3 = nn.Sequential(_conv(channels, channels), _conv(channels, channels))
        self.conv1 = _upsample_head(channels, 4)
        self.conv2 = _upsample_head(channels, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = _rescale(x, 1.0 / scale)                      # [B, C, H/s, W/s]
        flow = _rescale(flow, 1.0 / scale) * (1.0 / scale)  # pixels of the smaller frame
        feat = self.conv0(torch.cat((x, flow), 1))        # [B, c, H/4s, W/4s]
        for pair in (self.convblock0, self.convblock1, self.convblock2, self.convblock3):
            feat = pair(feat) + feat
        # Flows and mask logits accumulate across blocks: at least float32 under autocast.
        wide = torch.promote_types(feat.dtype, torch.float32)
        d_flow = _rescale(self.conv1(feat).to(wide), scale) * scale   # [B, 4, H, W]
        d_mask = _rescale(self.conv2(feat).to(wide), scale)           # [B, 1, H, W]
        return d_flow, d_mask


@dataclass
class HDState:
    """The anchor path after one block."""
    flow: torch.Tensor        # backward flows target->anchors [B, 4, H, W]
    mask_logit: torch.Tensor  # [B, 1, H, W]
    warped0: torch.Tensor     # the anchors warped by `flow` [B, 3, H, W]
    warped1: torch.Tensor


def _swap_flows(flow: torch.Tensor) -> torch.Tensor:
    """[B, 4] flows (to anchor 0, to anchor 1) -> (to anchor 1, to anchor 0)."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFNetHD(nn.Module):
    """The HDv3 flow network: ``forward(img0, img1)`` -> one :class:`HDState` per block, coarse to
    fine; ``teacher(...)`` refines the last one with the target. Frames must be padded to a
    multiple of 32 (lift.model.InputPadder)."""

    def __init__(self) -> None:
        super().__init__()
        # Inputs: both warped anchors (6) and the mask logit (1); the flow (4) joins inside.
        self.block0 = IFBlockHD(7 + 4)
        self.block1 = IFBlockHD(7 + 4)
        self.block2 = IFBlockHD(7 + 4)
        # The teacher also sees the target (3).
        self.block_tea = IFBlockHD(10 + 4)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, scale: float = 1.0
                ) -> list[HDState]:
        batch, _, height, width = img0.shape
        wide = torch.promote_types(img0.dtype, torch.float32)
        flow = img0.new_zeros(batch, 4, height, width, dtype=wide)
        mask = img0.new_zeros(batch, 1, height, width, dtype=wide)
        warped0, warped1 = img0, img1
        states = []
        for block, block_scale in zip((self.block0, self.block1, self.block2), HD_SCALES):
            s = block_scale / scale
            mask_in, flow_in = mask.to(img0.dtype), flow.to(img0.dtype)  # the frames' dtype under autocast
            f0, m0 = block(torch.cat((warped0, warped1, mask_in), 1), flow_in, s)
            # The same block with the anchors swapped; its answer swapped back and averaged.
            f1, m1 = block(torch.cat((warped1, warped0, -mask_in), 1), _swap_flows(flow_in), s)
            flow = flow + (f0 + _swap_flows(f1)) / 2
            mask = mask + (m0 - m1) / 2
            warped0 = backward_warp(img0, flow[:, :2]).to(img0.dtype)
            warped1 = backward_warp(img1, flow[:, 2:4]).to(img0.dtype)
            states.append(HDState(flow, mask, warped0, warped1))
        return states

    def teacher(self, warped0: torch.Tensor, warped1: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's residual flow and mask logit at full resolution (training only)."""
        x = torch.cat((warped0, warped1, mask.to(warped0.dtype), target.to(warped0.dtype)), 1)
        return self.block_tea(x, flow.to(warped0.dtype), 1)
