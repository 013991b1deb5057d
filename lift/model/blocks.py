"""The building blocks of the LIFT network (lift.model.network): RIFE-m's IFBlock, context net and
refinement U-Net, and the reference path's modules (its flow block, fusion scorer and U-Net adapter).

Written from the structure of ECCV2022-RIFE's ``IFNet_m`` and ``refine.py``; parameter names and shapes
are RIFE-m's (``tests/model/test_network_rife_parity.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lift.model.warp import backward_warp

# Downsampling of the refinement U-Net and the context pyramid (four stride-2 levels).
UNET_LEVELS = 4
# RIFE-m's IFBlock channels by scale (block0 / block1 / block2 of IFNet_m).
RIFE_BLOCK_CHANNELS = {4: 240, 2: 150, 1: 90}
# Channels of RIFE's context net / U-Net (``c = 16`` in refine.py).
RIFE_REFINE_CHANNELS = 16


def scaled_channels(base: float, width: float, minimum: int = 8) -> int:
    """Scale a full-size channel count by the width multiplier (even, at least `minimum`)."""
    return max(minimum, 2 * int(round(base * width / 2)))


def block_channels(scale: int, width: float) -> int:
    """Channels of an IFBlock at `scale`: RIFE-m's 240 / 150 / 90 at scales 4 / 2 / 1 for width 1;
    other scales follow the same trend (coarser blocks see more context and get more channels)."""
    return scaled_channels(RIFE_BLOCK_CHANNELS.get(scale, 90.0 * scale ** 0.71), width)


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """RIFE's conv: 3x3 + PReLU (one slope per channel)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), nn.PReLU(out_ch))


def _conv2(in_ch: int, out_ch: int) -> nn.Sequential:
    """RIFE's ``Conv2`` (refine.py): a strided conv then a plain one."""
    return nn.Sequential(_conv(in_ch, out_ch, 2), _conv(out_ch, out_ch))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a pixel flow and rescale its vectors to the new pixel size (per axis)."""
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = resize(flow, size)
    sx, sy = size[1] / w, size[0] / h
    if sx == sy:
        return out * sx
    # Several (u, v) pairs may be stacked on the channels: scale every u by sx, every v by sy.
    pairs = out.unflatten(1, (-1, 2))
    return torch.stack((pairs[:, :, 0] * sx, pairs[:, :, 1] * sy), 2).flatten(1, 2)


def time_encoding(delta: torch.Tensor) -> torch.Tensor:
    """Two bounded channels from the signed time `delta` to the target: direction and nearness."""
    return torch.stack((delta / (1.0 + delta.abs()), 1.0 / (1.0 + delta.abs())), dim=-1)


class FlowBlock(nn.Module):
    """An IFBlock: resizes its inputs to 1/scale, downsamples 4x with two strided convs, runs a
    residual trunk of `depth` convs, and upsamples with a transposed conv. It predicts
    `flow_channels` of residual flow (pixels of the full-resolution frame) and `extra_channels`
    of other maps (the mask logit). `zero_init` starts the output at exactly zero."""

    def __init__(self, in_channels: int, channels: int, depth: int, flow_channels: int,
                 extra_channels: int = 0, flow_input: bool = True, zero_init: bool = False) -> None:
        super().__init__()
        self.flow_channels = flow_channels
        self.flow_input = flow_input
        stem_in = in_channels + (flow_channels if flow_input else 0)
        self.stem = nn.Sequential(_conv(stem_in, channels // 2, 2),
                                  _conv(channels // 2, channels, 2))
        self.trunk = nn.Sequential(*[_conv(channels, channels) for _ in range(depth)])
        self.head = nn.ConvTranspose2d(channels, flow_channels + extra_channels, 4, 2, 1)
        if zero_init:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = x.shape[-2:]
        size = (height // scale, width // scale)
        x = resize(x, size)
        if self.flow_input:
            if flow is None:
                raise ValueError("FlowBlock: this block refines a flow, but none was given")
            x = torch.cat((x, resize_flow(flow, size).to(x.dtype)), 1)
        feat = self.stem(x)
        feat = self.trunk(feat) + feat
        # Flows and mask logits are accumulated across blocks: in at least float32 even under
        # autocast, where bf16 would round a 100-pixel flow to half a pixel.
        out = self.head(feat)
        out = out.to(torch.promote_types(out.dtype, torch.float32))
        out_flow = resize_flow(out[:, :self.flow_channels], (height, width))
        extra = out[:, self.flow_channels:]
        if extra.shape[1]:
            extra = resize(extra, (height, width))
        return out_flow, extra


class ContextNet(nn.Module):
    """RIFE's Contextnet: feature pyramid of one frame (levels 1/2 .. 1/16, c, 2c, 4c, 8c channels),
    each level warped by the flow."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.widths = [channels * 2 ** i for i in range(UNET_LEVELS)]
        self.levels = nn.ModuleList()
        prev = 3
        for w in self.widths:
            self.levels.append(_conv2(prev, w))
            prev = w

    def forward(self, image: torch.Tensor, flow: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = image
        for level in self.levels:
            x = level(x)
            feats.append(backward_warp(x, resize_flow(flow, tuple(x.shape[-2:]))).to(x.dtype))
        return feats


class RefineUNet(nn.Module):
    """RIFE's U-Net: predicts a residual in [-1, 1] for the fused frame. The anchors' warped context
    features join the input of every encoder level after the first and of the decoder; the decoder
    skips are the plain encoder outputs."""

    IN_CHANNELS = 17  # I0, I1, warped I0, warped I1, mask, anchor flows (4)

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.down = nn.ModuleList()
        prev = self.IN_CHANNELS
        for i in range(UNET_LEVELS):
            w = 2 * c * 2 ** i  # 2c, 4c, 8c, 16c at 1/2 .. 1/16
            self.down.append(_conv2(prev, w))
            prev = 2 * w  # the next level also gets both anchors' context (w / 2 channels each)
        # Decoder: from 1/16 back to full resolution; output widths 8c, 4c, 2c, c.
        self.up = nn.ModuleList()
        inp = prev  # 32c: the deepest encoder output and both deepest context levels
        for level in reversed(range(UNET_LEVELS)):
            out = c * 2 ** level
            self.up.append(nn.Sequential(nn.ConvTranspose2d(inp, out, 4, 2, 1), nn.PReLU(out)))
            inp = out + 2 * c * 2 ** (level - 1) if level > 0 else out
        self.out = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor, ctx0: list[torch.Tensor], ctx1: list[torch.Tensor],
                first_level_extra: torch.Tensor | None = None) -> torch.Tensor:
        """`first_level_extra` (the reference path's adapter output) is added to the first encoder
        level; None for RIFE."""
        skips = []
        for i, down in enumerate(self.down):
            s = down(x)
            if i == 0 and first_level_extra is not None:
                s = s + first_level_extra.to(s.dtype)
            skips.append(s)
            x = torch.cat((s, ctx0[i], ctx1[i]), 1)
        y = x
        for j, up in enumerate(self.up):
            if j > 0:
                y = torch.cat((y, skips[UNET_LEVELS - 1 - j]), 1)
            y = up(y)
        return torch.sigmoid(self.out(y)) * 2 - 1


class FusionScorer(nn.Module):
    """Per-frame, per-pixel fusion logit, shared by every frame (anchors and references).

    Reads its inputs at half resolution, computes at quarter resolution (like RIFE's finest
    IFBlock, which predicts the fusion mask at 1/4 and upsamples it) and returns full-resolution
    logits through a learned 4x transposed convolution. It runs once per input frame (14 times
    for window 15), so it is kept small.
    """

    # Per frame: warped frame (3), its disagreement with the anchor estimate (1), its deviation
    # from the per-pixel median of all warped frames (1), flow / 32 (2), time encoding (2), its
    # share of the mask logit (1). Shared by all frames: anchor estimate (3), variance over the
    # warped frames (1), the anchors' mutual disagreement (1).
    IN_CHANNELS = 15

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.body = nn.Sequential(_conv(self.IN_CHANNELS, c, 2), _conv(c, c), _conv(c, c))
        self.head = nn.ConvTranspose2d(c, 1, 8, 4, 2)
        # Start close to uniform scores so that the learned reference prior decides at first.
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ReferencePath(nn.Module):
    """Everything that exists only when the window has references; shared across references."""

    def __init__(self, width: float, depth: int, scale: int, quadratic: bool, unet_channels: int | None) -> None:
        super().__init__()
        self.scale = scale
        self.quadratic = quadratic
        # One pair of references (the k-th left and right) per call. Input: anchor estimate (3),
        # both references warped by their initial flows (6), both time encodings (4); the initial
        # flows (4) enter as the block's flow input. Zero output at first: the path starts as pure
        # extrapolation and learns corrections from the reconstruction terms.
        self.block = FlowBlock(13, scaled_channels(64, width), depth, flow_channels=4, zero_init=True)
        self.scorer = FusionScorer(scaled_channels(24, width))
        # Log-odds prior of the references together against the anchors; starts low (a share of
        # about 0.05) so that an untrained model fuses mostly the anchors (RIFE behaviour) and
        # learns to trust references.
        self.reference_logit = nn.Parameter(torch.tensor(-3.0))
        # What the references changed in the fused frame (3) and their total weight (1) into the
        # U-Net's first level (stride 2, like it), for backbones with a U-Net (None: none). Zero at
        # first so that the U-Net starts as RIFE's, and without bias so that it adds nothing where
        # the references have no weight.
        self.unet_adapter: nn.Conv2d | None = None
        if unet_channels is not None:
            self.unet_adapter = nn.Conv2d(4, 2 * unet_channels, 3, 2, 1, bias=False)
            nn.init.zeros_(self.unet_adapter.weight)
