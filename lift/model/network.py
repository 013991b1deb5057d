"""The LIFT network: a RIFE anchor path plus a far-reference path that only adds modules.

The anchor path (``model.backbone``) is RIFE-m, trained from scratch (below), or the published
RIFE HD network exactly (:mod:`lift.model.rife_hd`, the middle frame only, with the published
weights from ``model.pretrained``); the reference path is the same for both.

Anchor path (window 3 is exactly RIFE-m, ECCV2022-RIFE ``IFNet_m`` + ``refine.py``, written from
their structure, 10,710,780 parameters at full width; ``tests/model/test_network_rife_parity.py`` checks every
parameter shape against the official table):
  * A coarse-to-fine stack of IFBlocks (scales ``model.block_scales``, default 4, 2, 1; channels
    240 / 150 / 90). Each block looks at the anchors, the anchors warped by the current flow, the
    current mask logit and the timestep (a constant input channel, so any timestep in (0, 1) works)
    and predicts a residual to the two backward flows target->anchors and to the mask logit.
  * A teacher block that additionally sees the target refines the last student flow during
    training; its flow supervises the students where its reconstruction is better (privileged
    distillation, ``aux["distill_loss"]``).
  * A context network (16/32/64/128 channels) extracts feature pyramids of the
    anchors warped by the anchor flows, and RIFE's U-Net (17 inputs) predicts a residual in [-1, 1]
    added to the fused frame.

Reference path (present only when the window has references, window > 3; every module lives
under ``reference.`` and nothing of the anchor path changes):
  * References come in pairs (the k-th left and the k-th right), refined from the nearest pair
    outwards. Each pair starts from flows extrapolated from the pair inside it (the detached anchor
    flows for the first) with the references' relative times: linear by default, constant
    acceleration as an option (``model.quadratic_extrapolation``; it amplifies noise ~t^2 far away).
  * A parameter-free search (:mod:`lift.model.matching`, ``model.reference_matching``) then aligns
    the references with each other: the nearest pair left against right, each farther reference
    against its aligned inner neighbour. It needs no training, so the references line up from the
    first step even where the anchors' flows are wrong (untrained, or occluded at the anchor times).
  * ONE pair block, shared by every pair, refines both flows. Its output layer starts at zero, so
    an untrained path is the matched extrapolation, and its flows are trained to be *right* by a
    per-reference reconstruction term (each warped reference against the target,
    ``loss.reference_reconstruction``) besides the main loss through the fused frame.
  * A fusion scorer, shared across frames, predicts a per-pixel logit for every warped frame
    (anchors and references) from *detached* inputs, so the loss cannot lower a reference's weight
    by bending its flow: the warped frame, the anchor estimate, its disagreement with that
    estimate, its deviation from the per-pixel median of all warped frames, their variance, the
    anchors' mutual disagreement, the mask logit, its flow and its temporal distance. The cross-frame
    cues let it prefer a reference where both anchors are wrong. A softmax per pixel decides only
    between the anchors (one candidate: the mask-weighted mean of their two logits) and each
    reference (its logit plus a learned prior); RIFE's own mask splits the anchors' share between
    them, so with no reference weight the fused frame is exactly window 3's.
  * What the references changed in the fused frame, and their weight, enter the U-Net (RIFE-m)
    through a zero-initialised, bias-free adapter added to its first level, so the U-Net itself is
    RIFE's and adds nothing where the references have no weight.
  * Cost: the pair block and the search work one scale coarser than the finest student block and
    the scorer at 1/4 resolution (``python -m lift.bench model`` reports the window-15 / window-3 cost).
With window 3 the reference path does not exist: the network is RIFE-m, the control arm.
The modules (IFBlock, context net, U-Net, the reference path's block and scorer) are in
:mod:`lift.model.blocks`; this module wires them into the forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from lift.config import ModelConfig
from lift.model.blocks import (
    RIFE_REFINE_CHANNELS,
    UNET_LEVELS,
    block_channels,
    ContextNet,
    FlowBlock,
    FusionScorer,
    ReferencePath,
    RefineUNet,
    resize,
    resize_flow,
    scaled_channels,
    time_encoding,
)
from lift.model.matching import align_references
from lift.model.registry import register_model
from lift.model.rife_hd import HD_SCALES, HD_SIZE_MULTIPLE, HD_TIMESTEP, IFNetHD
from lift.model.warp import backward_warp
from lift.window import WindowSpec, check_window

# Reference flows are clamped to this multiple of the frame size: a fit extrapolated many gaps
# away can otherwise produce displacements that no conv layer has seen in training.
MAX_EXTRAPOLATED_FLOW = 1.0
# Below this distance of the timestep from an anchor the constant-acceleration fit is singular.
QUADRATIC_MIN_TIMESTEP = 1e-3
# RIFE's margin: distil only where the teacher's error is lower by more than this.
DISTILL_MARGIN = 0.01
# The anchor paths (model.backbone): RIFE-m, trained from scratch, or the published RIFE HD.
BACKBONES = ("rife_m", "rife_hd")


@dataclass
class _AnchorState:
    """What the student blocks leave for the later steps of one forward pass."""
    flow: torch.Tensor          # backward flows target->anchors [B, 4, H, W]
    mask_logit: torch.Tensor    # [B, 1, H, W]
    mask: torch.Tensor          # sigmoid(mask_logit): the left anchor's weight
    warped0: torch.Tensor       # the anchors warped to the target by `flow`
    warped1: torch.Tensor
    preds: list[torch.Tensor]   # each student block's mask-fused estimate, coarse to fine
    flows: list[torch.Tensor]   # each student block's flow


@register_model
class LIFT(nn.Module):
    """Frame interpolation from two anchors and optional far references (see the module doc).

    forward(frames [B, N, 3, H, W], times [B, N], timestep [B], target [B, 3, H, W] | None)
    -> (pred [B, 3, H, W] in [0, 1], aux dict). Frames are ordered as WindowSpec.input_offsets:
    left anchor, right anchor, the left references nearest first, then the right references
    nearest first (the k-th left and the k-th right reference form a pair).
    """

    # Its model.name in the config (lift.model.registry).
    name: ClassVar[str] = "lift"

    def __init__(self, window: int = 3, width: float = 1.0, block_scales: Sequence[int] = (4, 2, 1),
                 block_depth: int = 8, quadratic_extrapolation: bool = False, refine: bool = True,
                 reference_matching: bool = True, backbone: str = "rife_m") -> None:
        super().__init__()
        check_window(window, "LIFT: window")
        if backbone not in BACKBONES:
            raise ValueError(f"LIFT: backbone={backbone!r}; expected one of {', '.join(BACKBONES)}")
        spec = WindowSpec(window)
        scales = [int(s) for s in block_scales]
        if not scales or any(s < 1 for s in scales) or scales != sorted(scales, reverse=True):
            raise ValueError(f"LIFT: block_scales={list(block_scales)}; expected positive scales, coarse to fine")
        if width <= 0 or block_depth < 1:
            raise ValueError(f"LIFT: width={width}, block_depth={block_depth}; expected width > 0 and depth >= 1")
        self.window = window
        self.num_inputs = spec.num_inputs
        self.width = width
        self.backbone = backbone
        self.reference_matching = reference_matching
        refine_c = scaled_channels(RIFE_REFINE_CHANNELS, width)
        self.hd: IFNetHD | None = None
        self.blocks: nn.ModuleList | None = None
        self.teacher: FlowBlock | None = None
        if backbone == "rife_hd":
            # The published network as it is (no context net or U-Net in HDv3): width, depth,
            # scales and refine describe RIFE-m only.
            scales, refine = list(HD_SCALES), False
            self.hd = IFNetHD()
        else:
            self.blocks, self.teacher = _rife_m_blocks(scales, width, block_depth)
        self.block_scales = scales
        self.refine = refine
        if refine:
            self.context = ContextNet(refine_c)
            self.unet = RefineUNet(refine_c)
        else:
            self.context = None
            self.unet = None
        # The reference block refines an already good initial flow: it runs one scale coarser
        # than the finest student block, which keeps 12 references cheap.
        ref_scale = 2 * scales[-1]
        if spec.has_references:
            self.reference = ReferencePath(width, max(1, block_depth // 2), ref_scale, quadratic_extrapolation,
                                           refine_c if refine else None)
        else:
            self.reference = None
        # Every block downsamples by 4 * its scale, the U-Net by 2**UNET_LEVELS. The reference
        # block counts even without references, so that every window pads frames identically.
        self.size_multiple = math.lcm(4 * max(*scales, ref_scale), 2 ** UNET_LEVELS if refine else 1)
        # How InputPadder fills the margin: the published model is reproduced with the official
        # inference's zero padding; RIFE-m repeats the border (no false edge for the flow).
        self.pad_mode = "replicate"
        if backbone == "rife_hd":
            self.size_multiple = math.lcm(self.size_multiple, HD_SIZE_MULTIPLE)
            self.pad_mode = "constant"

    @staticmethod
    def config_args(cfg: ModelConfig, window: int) -> dict[str, Any]:
        """Constructor arguments for `cfg` and `window`: what a checkpoint stores as ``model_args``
        (plain values, readable by torch.load(weights_only=True)) and rebuilds the network from."""
        return {"window": int(window), "width": float(cfg.width), "block_scales": [int(s) for s in cfg.block_scales],
                "block_depth": int(cfg.block_depth), "quadratic_extrapolation": bool(cfg.quadratic_extrapolation),
                "refine": bool(cfg.refine), "reference_matching": bool(cfg.reference_matching),
                "backbone": str(cfg.pretrained or cfg.backbone)}  # published weights imply their backbone

    def reference_parameters(self) -> list[nn.Parameter]:
        return [] if self.reference is None else list(self.reference.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The anchor path's parameters (everything outside the reference path)."""
        own = {id(p) for p in self.reference_parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Load published weights into the anchor path, strictly (lift.model.pretrained)."""
        if self.hd is None:
            raise ValueError(f"LIFT: published weights need model.backbone=rife_hd, this model is {self.backbone}")
        self.hd.load_state_dict(state, strict=True)

    # ------------------------------------------------------------------------------------------
    def _check_inputs(self, frames: torch.Tensor, times: torch.Tensor, timestep: torch.Tensor
                      ) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"LIFT: frames must be [B, N, 3, H, W], got {tuple(frames.shape)}")
        batch, n, _, height, width = frames.shape
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"LIFT: frame size H={height}, W={width} is not a multiple of {self.size_multiple}; "
                f"pad the frames first (lift.model.InputPadder)")
        if self.reference is None and n != 2:
            raise ValueError(
                f"LIFT: this model (window={self.window}) has no reference path and takes exactly the 2 anchors, "
                f"got N={n} frames")
        if n < 2:
            raise ValueError(f"LIFT: need at least the 2 anchors, got N={n} frames")
        if n % 2:
            raise ValueError(f"LIFT: references come in pairs (the k-th left and the k-th right), got N={n} frames: "
                             f"2 anchors and {n - 2} references")
        if tuple(times.shape) != (batch, n):
            raise ValueError(f"LIFT: times must be [B, N] = [{batch}, {n}], got {tuple(times.shape)}")
        if timestep.dim() == 0:
            timestep = timestep.expand(batch)
        timestep = timestep.reshape(-1)
        if timestep.shape[0] != batch:
            raise ValueError(f"LIFT: timestep must be [B] = [{batch}], got {tuple(timestep.shape)}")
        if self.hd is not None and bool((timestep != HD_TIMESTEP).any()):
            other = sorted({round(float(t), 6) for t in timestep if float(t) != HD_TIMESTEP})
            raise ValueError(f"LIFT: model.backbone=rife_hd interpolates the middle frame only (timestep "
                             f"{HD_TIMESTEP}); got timestep {', '.join(map(str, other))} (use model.backbone=rife_m, "
                             f"or data.gap 2 for a middle target)")
        return timestep

    def forward(self, frames: torch.Tensor, times: torch.Tensor, timestep: torch.Tensor,
                target: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        timestep = self._check_inputs(frames, times, timestep)
        batch, _, _, height, width = frames.shape
        tmap = timestep.to(frames.dtype).view(batch, 1, 1, 1).expand(batch, 1, height, width)
        anchors = self._anchor_flows(frames, tmap)
        aux: dict = {"student_preds": anchors.preds, "mask": anchors.mask,
                     "student_flows": [f.view(batch, 2, 2, height, width) for f in anchors.flows]}
        if target is not None:
            aux.update(self._teacher(frames, tmap, anchors, target))
        weights, all_warped, all_flows = self._fuse(frames, times, timestep, anchors, target, aux)
        fused = (weights * all_warped).sum(1)
        pred = fused
        if self.unet is not None:
            residual = self._refine(frames, anchors, fused, weights)
            aux["residual"] = residual
            pred = fused + residual
        aux.update(flows=all_flows, fusion_weights=weights, warped=all_warped, fused=fused)
        return torch.clamp(pred, 0.0, 1.0), aux

    def _anchor_flows(self, frames: torch.Tensor, tmap: torch.Tensor) -> "_AnchorState":
        """RIFE's student blocks, coarse to fine: the backward flows target->anchors [B, 4, H, W],
        the mask, and each block's prediction and flow (for the distillation loss)."""
        if self.hd is not None:
            return self._hd_anchor_flows(frames)
        assert self.blocks is not None
        img0, img1 = frames[:, 0], frames[:, 1]
        flow: torch.Tensor | None = None
        mask_logit = frames.new_zeros(frames.shape[0], 1, *frames.shape[-2:])
        warped0, warped1 = img0, img1
        preds: list[torch.Tensor] = []
        flows: list[torch.Tensor] = []
        for i, (block, scale) in enumerate(zip(self.blocks, self.block_scales)):
            if i == 0:
                x = torch.cat((img0, img1, tmap), 1)
            else:
                x = torch.cat((img0, img1, tmap, warped0, warped1, mask_logit), 1)  # IFNet_m's order
            d_flow, d_mask = block(x, flow, scale)
            flow = d_flow if flow is None else flow + d_flow
            mask_logit = mask_logit + d_mask
            warped0 = backward_warp(img0, flow[:, :2]).to(frames.dtype)
            warped1 = backward_warp(img1, flow[:, 2:]).to(frames.dtype)
            mask = torch.sigmoid(mask_logit)
            preds.append(warped0 * mask + warped1 * (1 - mask))
            flows.append(flow)
        assert flow is not None
        return _AnchorState(flow, mask_logit, mask, warped0, warped1, preds, flows)

    def _hd_anchor_flows(self, frames: torch.Tensor) -> "_AnchorState":
        """The published RIFE HD anchor path (lift.model.rife_hd), in the same state as RIFE-m's."""
        assert self.hd is not None
        states = self.hd(frames[:, 0], frames[:, 1])
        preds = []
        for state in states:
            mask = torch.sigmoid(state.mask_logit).to(frames.dtype)
            preds.append(state.warped0 * mask + state.warped1 * (1 - mask))
        last = states[-1]
        return _AnchorState(last.flow, last.mask_logit, mask, last.warped0, last.warped1, preds,
                            [state.flow for state in states])

    def _teacher(self, frames: torch.Tensor, tmap: torch.Tensor, anchors: "_AnchorState",
                 target: torch.Tensor) -> dict:
        """Training only: the teacher block sees the target and refines the last student flow; its
        prediction supervises the students (RIFE's privileged distillation)."""
        batch, _, _, height, width = frames.shape
        if tuple(target.shape) != (batch, 3, height, width):
            raise ValueError(f"LIFT: target must be [B, 3, H, W] = [{batch}, 3, {height}, {width}], "
                             f"got {tuple(target.shape)}")
        img0, img1, flow, mask_logit = frames[:, 0], frames[:, 1], anchors.flow, anchors.mask_logit
        if self.hd is not None:
            d_flow, d_mask = self.hd.teacher(anchors.warped0, anchors.warped1, mask_logit, target, flow)
        else:
            assert self.teacher is not None
            x = torch.cat((img0, img1, tmap, anchors.warped0, anchors.warped1, mask_logit, target.to(frames.dtype)), 1)
            d_flow, d_mask = self.teacher(x, flow, self.block_scales[-1])
        t_flow = flow + d_flow
        t_mask = torch.sigmoid(mask_logit + d_mask)
        t_pred = (backward_warp(img0, t_flow[:, :2]) * t_mask
                  + backward_warp(img1, t_flow[:, 2:]) * (1 - t_mask))
        return {"teacher_pred": t_pred, "teacher_flows": t_flow.view(batch, 2, 2, height, width),
                "distill_loss": distillation_loss(anchors.preds, anchors.flows, t_pred, t_flow, target)}

    def _fuse(self, frames: torch.Tensor, times: torch.Tensor, timestep: torch.Tensor, anchors: "_AnchorState",
              target: torch.Tensor | None, aux: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fusion weights [B, N, 1, H, W], warped frames [B, N, 3, H, W] and flows [B, N, 2, H, W]
        of the anchors and (with a reference path) the references; RIFE's mask without one. Adds
        the reference diagnostics and, with a target, the reference reconstruction term to `aux`."""
        batch, n, _, height, width = frames.shape
        anchor_flows = anchors.flow.view(batch, 2, 2, height, width)
        all_flows = anchor_flows
        all_warped = torch.stack((anchors.warped0, anchors.warped1), 1)
        if self.reference is None:
            return torch.stack((anchors.mask, 1 - anchors.mask), 1), all_warped, all_flows
        estimate = anchors.preds[-1]
        if n > 2:
            ref_flows, ref_init, ref_warped = self._reference_flows(
                frames[:, 2:], times[:, 2:], timestep, anchor_flows, estimate)
            all_flows = torch.cat((anchor_flows, ref_flows), 1)
            all_warped = torch.cat((all_warped, ref_warped), 1)
            aux["reference_init_flows"] = ref_init
            if target is not None:
                # Each warped reference against the target: trains the reference flows to be
                # right wherever the reference sees the target, whatever its fusion weight.
                aux["reference_recon_loss"] = (ref_warped.float() - target.float().unsqueeze(1)).abs().mean()
        weights = self._fusion_weights(all_warped, all_flows, times, timestep, estimate, anchors.mask_logit,
                                       anchors.mask)
        return weights, all_warped, all_flows

    def _refine(self, frames: torch.Tensor, anchors: "_AnchorState", fused: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """RIFE's context net and U-Net: a residual in [-1, 1] for the fused frame; the reference
        path enters through its zero-initialised adapter."""
        assert self.context is not None and self.unet is not None
        img0, img1, flow = frames[:, 0], frames[:, 1], anchors.flow
        x = torch.cat((img0, img1, anchors.warped0, anchors.warped1, anchors.mask, flow), 1)
        ctx0 = self.context(img0, flow[:, :2])
        ctx1 = self.context(img1, flow[:, 2:])
        extra = None
        if self.reference is not None and self.reference.unet_adapter is not None:
            # What the references changed (zero where they have no weight) and their weight: with
            # a bias-free adapter, window 15 without reference weight is exactly window 3.
            change = fused - anchors.preds[-1]
            extra = self.reference.unet_adapter(torch.cat((change, weights[:, 2:].sum(1)), 1))
        return self.unet(x, ctx0, ctx1, extra)

    # ------------------------------------------------------------------------------------------
    def _reference_flows(self, refs: torch.Tensor, ref_times: torch.Tensor, timestep: torch.Tensor,
                         anchor_flows: torch.Tensor, estimate: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Refined flows target->reference [B, R, 2, H, W], the flows extrapolated from the anchors
        alone (same shape: the baseline the diagnostics compare against) and the warped references
        [B, R, 3, H, W].

        The k-th left and the k-th right reference form a pair, refined from the nearest pair
        outwards: each pair starts from the flows extrapolated from the pair inside it (the anchors
        for the first), so an error does not grow with the distance as it would extrapolated from
        the anchors alone; the search of lift.model.matching aligns the pair (with
        ``reference_matching``), and the pair block compares the two references warped to the
        target with each other as well as with the anchor estimate. Where both anchors are wrong
        (an occlusion at the anchor times) the estimate is no guide, but the pair still agrees at
        the right flow, as RIFE's two anchors do. The anchor flows, the estimate and each pair's
        start enter detached: the reference path learns to use what it is given, never to bend it."""
        assert self.reference is not None
        batch, r, _, height, width = refs.shape
        pairs = r // 2
        lo = (height // self.reference.scale, width // self.reference.scale)
        # Everything before the final warp runs at the reference block's resolution: the
        # extrapolation is linear in the flows, so it commutes with bilinear resizing, and R
        # full-resolution copies of the block inputs would dominate the cost of the path.
        known = resize_flow(anchor_flows.detach().flatten(1, 2), lo).view(batch, 2, 2, *lo)
        known_times: torch.Tensor | None = None  # the anchors
        limit = MAX_EXTRAPOLATED_FLOW * max(lo)
        quadratic = self.reference.quadratic
        baseline = extrapolate_flows(known, ref_times, timestep, quadratic=quadratic).clamp(-limit, limit)
        refs_lo = resize(refs.flatten(0, 1), lo).unflatten(0, (batch, r))
        est = resize(estimate.detach(), lo)
        refined = []
        inner: torch.Tensor | None = None  # the inner pair's references aligned to the target
        for k in range(pairs):
            index = [k, pairs + k]
            pair, pair_times = refs_lo[:, index], ref_times[:, index]
            delta = pair_times - timestep[:, None]
            init = extrapolate_flows(known, pair_times, timestep, quadratic=quadratic,
                                     source_times=known_times).clamp(-limit, limit)  # [B, 2, 2, h, w]
            if self.reference_matching:
                init = align_references(pair, init, delta, inner)
            warped_init = backward_warp(pair.flatten(0, 1), init.flatten(0, 1)).to(refs.dtype)
            tenc = time_encoding(delta.to(refs.dtype)).reshape(batch, 4, 1, 1).expand(-1, -1, *lo)
            x = torch.cat((est, warped_init.unflatten(0, (batch, 2)).flatten(1, 2), tenc), 1)
            d_flow, _ = self.reference.block(x, init.flatten(1, 2), 1)
            flow = (init.flatten(1, 2) + d_flow).view(batch, 2, 2, *lo)
            refined.append(flow)
            known, known_times = flow.detach(), pair_times
            if self.reference_matching:
                inner = backward_warp(pair.flatten(0, 1), known.flatten(0, 1)).unflatten(0, (batch, 2))
        # Back to the input order: left references k = 1..K, then right references k = 1..K.
        flows_lo = torch.cat([f[:, :1] for f in refined] + [f[:, 1:] for f in refined], 1)
        flows = resize_flow(flows_lo.flatten(0, 1), (height, width))
        warped = backward_warp(refs.flatten(0, 1), flows).to(refs.dtype)
        baseline = resize_flow(baseline.flatten(0, 1), (height, width))
        return (flows.view(batch, r, 2, height, width), baseline.view(batch, r, 2, height, width),
                warped.view(batch, r, 3, height, width))

    def _fusion_weights(self, warped: torch.Tensor, flows: torch.Tensor, times: torch.Tensor,
                        timestep: torch.Tensor, estimate: torch.Tensor, mask_logit: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
        """Fusion weights [B, N, 1, H, W]: a softmax per pixel between the anchors, as one
        candidate, and each reference; inside the anchors' share RIFE's own mask splits it between
        the two anchors. The scorer decides only anchors against references, never one anchor
        against the other, so with no reference weight the fused frame is exactly window 3's.

        The anchors' logit is the mask-weighted mean of their two scores; a reference's is its
        score plus a learned prior. The scorer's inputs are detached: its gradient trains the
        scorer, never the flows (a flow bent to make its frame look unreliable would hide the
        reference instead of aligning it)."""
        assert self.reference is not None
        batch, n, _, height, width = warped.shape
        half = (height // 2, width // 2)
        # Evidence at the scorer's half resolution; every cue is computed across frames there.
        w = F.avg_pool2d(warped.detach().flatten(0, 1), 2).unflatten(0, (batch, n))  # [B, N, 3, h, w]
        est = F.avg_pool2d(estimate.detach(), 2).unsqueeze(1)  # [B, 1, 3, h, w]
        fl = F.avg_pool2d(flows.detach().to(warped.dtype).flatten(0, 1), 2).unflatten(0, (batch, n))
        logit = F.avg_pool2d(mask_logit.detach().to(warped.dtype), 2)  # [B, 1, h, w]
        disagreement = (w - est).abs().mean(2, keepdim=True)
        median = w.median(dim=1, keepdim=True).values
        deviation = (w - median).abs().mean(2, keepdim=True)
        variance = w.var(dim=1, unbiased=False, keepdim=True).mean(2, keepdim=True).expand(-1, n, -1, -1, -1)
        anchors = (w[:, 0] - w[:, 1]).abs().mean(1, keepdim=True).unsqueeze(1).expand(-1, n, -1, -1, -1)
        # Each anchor sees its own half of the mask's log-odds, the references none.
        share = torch.stack((logit / 2, -logit / 2), 1)
        if n > 2:
            share = torch.cat((share, torch.zeros_like(logit).unsqueeze(1).expand(-1, n - 2, -1, -1, -1)), 1)
        delta = (times - timestep[:, None]).to(warped.dtype)
        tenc = time_encoding(delta).view(batch, n, 2, 1, 1).expand(-1, -1, -1, *half)
        # Flows of tens of pixels are scaled so that the scorer's inputs stay O(1).
        x = torch.cat((w, disagreement, deviation, fl / 32.0, tenc, share,
                       est.expand(-1, n, -1, -1, -1), variance, anchors), 2)
        scores = self.reference.scorer(x.reshape(batch * n, FusionScorer.IN_CHANNELS, *half))
        scores = scores.float().view(batch, n, 1, height, width)
        # RIFE's mask itself (the anchor state's tensor, not a second sigmoid of its logit: the anchor
        # path's gradient then accumulates exactly as window 3's). [B, 1, 1, H, W], the left anchor's share.
        mask = mask.float().unsqueeze(1)
        anchors_logit = mask * scores[:, :1] + (1 - mask) * scores[:, 1:2]
        split = torch.cat((mask, 1 - mask), 1)
        if n == 2:
            return split.to(warped.dtype)
        # Minus log(R): the prior mass of all references together does not grow with their number,
        # so a model trained with 12 references behaves sensibly with 4.
        ref_prior = (self.reference.reference_logit - math.log(n - 2)).float()
        group = torch.softmax(torch.cat((anchors_logit, scores[:, 2:] + ref_prior), 1), dim=1)
        return torch.cat((group[:, :1] * split, group[:, 1:]), 1).to(warped.dtype)


def _rife_m_blocks(scales: list[int], width: float, depth: int) -> tuple[nn.ModuleList, FlowBlock]:
    """RIFE-m's student blocks and teacher. The first student sees anchors + timestep (7 channels);
    later ones also the warped anchors and the mask logit (14), plus the current flow (4) inside
    the block; the teacher also the target (17)."""
    students = nn.ModuleList(
        FlowBlock(7 if i == 0 else 14, block_channels(s, width), depth, flow_channels=4, extra_channels=1,
                  flow_input=i > 0)
        for i, s in enumerate(scales))
    teacher = FlowBlock(17, block_channels(scales[-1], width), depth, flow_channels=4, extra_channels=1)
    return students, teacher


def extrapolate_flows(known_flows: torch.Tensor, ref_times: torch.Tensor, timestep: torch.Tensor,
                      quadratic: bool = False, source_times: torch.Tensor | None = None) -> torch.Tensor:
    """Flows target->reference [B, R, 2, H, W] from two known flows [B, 2, 2, H, W].

    The target sits at time `timestep` (tau), the known flows point to the frames at
    `source_times` [B, 2] (one before and one after the target; default the anchors, 0 and 1), the
    references at `ref_times` [B, R]. Linear: constant velocity through the target, from the known
    flow on the reference's side (d(dt) = d_side * dt / (side_time - tau)). Quadratic: constant
    acceleration fitted through the target (zero displacement) and both known flows,
    d(dt) = v dt + p dt^2; it needs a known frame on each side of the target at a usable distance,
    so samples whose timestep is within QUADRATIC_MIN_TIMESTEP of a known frame fall back to linear.
    """
    tau = timestep.to(known_flows.dtype).view(-1, 1)
    if source_times is None:
        source_times = torch.cat((torch.zeros_like(tau), torch.ones_like(tau)), 1)
    source_times = source_times.to(known_flows.dtype)
    d0 = known_flows[:, 0].unsqueeze(1)  # [B, 1, 2, H, W]
    d1 = known_flows[:, 1].unsqueeze(1)
    delta = ref_times.to(known_flows.dtype) - tau  # [B, R]
    a0 = source_times[:, :1] - tau  # time of the left known frame relative to the target (< 0)
    a1 = source_times[:, 1:] - tau
    shape = (*delta.shape, 1, 1, 1)
    left = (delta < 0).view(shape)
    safe_a0 = torch.where(a0.abs() < 1e-6, torch.full_like(a0, -1e-6), a0)
    safe_a1 = torch.where(a1.abs() < 1e-6, torch.full_like(a1, 1e-6), a1)
    linear = torch.where(left, d0 * (delta / safe_a0).view(shape), d1 * (delta / safe_a1).view(shape))
    if not quadratic:
        return linear
    # v*a0 + p*a0^2 = d0 and v*a1 + p*a1^2 = d1.
    ok = (a0.abs().view(-1) > QUADRATIC_MIN_TIMESTEP) & (a1.abs().view(-1) > QUADRATIC_MIN_TIMESTEP)
    a0v, a1v = safe_a0.view(-1, 1, 1, 1, 1), safe_a1.view(-1, 1, 1, 1, 1)
    p = (d1 * a0v - d0 * a1v) / (a0v * a1v * (a1v - a0v))
    v = (d0 - p * a0v ** 2) / a0v
    dt = delta.view(shape)
    quad = v * dt + p * dt ** 2
    return torch.where(ok.view(-1, 1, 1, 1, 1), quad, linear)


def distillation_loss(student_preds: Sequence[torch.Tensor], student_flows: Sequence[torch.Tensor],
                      teacher_pred: torch.Tensor, teacher_flow: torch.Tensor, target: torch.Tensor
                      ) -> torch.Tensor:
    """RIFE's privileged distillation: each student block's anchor flow is pulled towards the
    (detached) teacher flow at pixels where the teacher reconstructs the target better by more
    than a margin. Summed over blocks, like RIFE; computed in float32."""
    target = target.float()
    t_err = (teacher_pred.float() - target).abs().mean(1, keepdim=True).detach()
    t_flow = teacher_flow.float().detach()
    total = teacher_flow.new_zeros((), dtype=torch.float32)
    for pred, flow in zip(student_preds, student_flows):
        s_err = (pred.float() - target).abs().mean(1, keepdim=True).detach()
        where = (s_err > t_err + DISTILL_MARGIN).float()
        # Small epsilon: the gradient of sqrt at an exact match would be 0 * inf.
        dist = ((t_flow - flow.float()) ** 2).mean(1, keepdim=True).add(1e-6).sqrt()
        total = total + (dist * where).mean()
    return total
