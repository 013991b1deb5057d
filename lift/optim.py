"""The optimiser step of training: AdamW, the learning-rate schedule, gradient scaling, clipping,
accumulation and the non-finite guard.

The schedule is a pure function of the step (`get_lr`, nanoGPT's): the learning rate of every
parameter group is set from the step count after each update, so resuming restores the step and
nothing else.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from lift.config import Config, OptimConfig
from lift.logging import TensorBoardLogger

log = logging.getLogger("lift.train")


class NonFiniteLossError(RuntimeError):
    """Training produced non-finite losses for train.max_nonfinite_steps consecutive steps."""


def get_lr(step: int, optim: OptimConfig, total_steps: int) -> float:
    """Learning rate after `step` optimiser steps: linear warm-up to optim.lr over
    optim.warmup_steps, then cosine (or constant) down to optim.min_lr at `total_steps`."""
    warmup = max(0, optim.warmup_steps)
    if warmup and step < warmup:
        factor = (step + 1) / (warmup + 1)
    elif optim.scheduler == "constant":
        factor = 1.0
    else:
        min_factor = optim.min_lr / optim.lr
        progress = min(1.0, (step - warmup) / max(1, max(1, total_steps) - warmup))
        factor = min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return optim.lr * factor


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool = False,
                 backbone_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """AdamW parameter groups, each with an ``lr_scale`` that multiplies get_lr. By default only
    weight matrices/kernels decay (decaying biases and per-channel scales only slows them);
    `decay_all` is RIFE's recipe, decay on every parameter. With `backbone_lr_scale` != 1 the
    anchor path (``model.backbone_parameters()``) gets its own groups at that fraction of the rate."""
    backbone_ids: set[int] = set()
    if backbone_lr_scale != 1.0 and hasattr(model, "backbone_parameters"):
        backbone_ids = {id(p) for p in model.backbone_parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            key = (id(p) in backbone_ids, decay_all or p.ndim >= 2)
            groups.setdefault(key, []).append(p)
    # A fixed group order (the rest before the anchor path, decayed before not), so that an optimiser
    # state saved by one run loads into the next.
    order = [(False, True), (False, False), (True, True), (True, False)]
    return [{"params": groups[key], "weight_decay": weight_decay if key[1] else 0.0,
             "lr_scale": backbone_lr_scale if key[0] else 1.0} for key in order if key in groups]


class Updater:
    """Applies accumulated gradients to `model`: one `update` per optimiser step.

    `step` counts the updates applied; `skipped_steps` those refused for a non-finite loss or
    gradient (train.max_nonfinite_steps in a row stop the run with NonFiniteLossError).
    """

    def __init__(self, cfg: Config, model: nn.Module, fp16: bool, device: torch.device,
                 tb: TensorBoardLogger) -> None:
        o = cfg.optim
        self.cfg = cfg
        self.tb = tb
        self.params = [p for p in model.parameters() if p.requires_grad]
        # Gradients are clipped per path: the anchor path's update must not depend on the reference
        # path's gradients, or a window-15 arm's anchors would train at another effective rate than
        # window 3's (a confound of every context ablation).
        reference = {id(p) for p in getattr(model, "reference_parameters", list)()}
        self.clip_sets = [group for group in ([p for p in self.params if id(p) not in reference],
                                              [p for p in self.params if id(p) in reference]) if group]
        groups = param_groups(model, o.weight_decay, o.weight_decay_all, o.backbone_lr_scale)
        self.optimizer = torch.optim.AdamW(groups, lr=o.lr,
                                           betas=(o.betas[0], o.betas[1]), weight_decay=o.weight_decay)
        # fp16 needs loss scaling to keep small gradients representable; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        self.total_steps = 1
        self.step = 0
        self.skipped_steps = 0
        self.consecutive_nonfinite = 0
        self.apply_lr()

    @property
    def lr(self) -> float:
        """The base learning rate (get_lr at the current step), before any group's lr_scale."""
        return get_lr(self.step, self.cfg.optim, self.total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.apply_lr()

    def apply_lr(self) -> None:
        """Every parameter group gets get_lr at the current step, times its lr_scale."""
        lr = get_lr(self.step, self.cfg.optim, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of one micro-batch's loss (scaled for fp16, divided by accum_steps)."""
        self.scaler.scale(loss / self.cfg.optim.accum_steps).backward()

    def _skip(self, reason: str, epoch: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self.consecutive_nonfinite += 1
        self.tb.scalar("train/skipped_steps", self.skipped_steps, self.step)
        log.warning("epoch %d step %d: %s; step skipped (%d consecutive, %d in total)", epoch + 1, self.step,
                    reason, self.consecutive_nonfinite, self.skipped_steps)
        limit = self.cfg.train.max_nonfinite_steps
        if self.consecutive_nonfinite >= limit:
            raise NonFiniteLossError(
                f"training stopped at epoch {epoch + 1}, step {self.step}: {self.consecutive_nonfinite} consecutive "
                f"steps had a non-finite loss or gradient (train.max_nonfinite_steps={limit}; last: {reason}). "
                f"Lower optim.lr (now {self.cfg.optim.lr:g}), keep optim.grad_clip > 0, try train.amp=off or bf16, "
                "or check the data for NaNs.")

    def update(self, micro_batches: int, nonfinite: str | None, epoch: int) -> float | None:
        """Apply the accumulated gradients; returns the gradient norm, None when the step is skipped."""
        if nonfinite is not None:
            self._skip(nonfinite, epoch)
            return None
        accum = self.cfg.optim.accum_steps
        if micro_batches < accum:
            # The last group of an epoch is short: each loss was divided by accum_steps.
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(accum / micro_batches)
        self.scaler.unscale_(self.optimizer)
        grad_norm = self.clip_gradients()
        if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
            self._skip(f"gradient norm is {grad_norm}", epoch)
            return None
        # With fp16 the scaler itself skips steps with inf/NaN gradients and lowers the scale.
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.apply_lr()
        self.consecutive_nonfinite = 0
        return grad_norm

    def clip_gradients(self) -> float:
        """Clip each path's (unscaled) gradients to optim.grad_clip; returns the norm of all of them
        before clipping (0 disables clipping, the norm is still returned)."""
        clip = self.cfg.optim.grad_clip
        norms = [float(torch.nn.utils.clip_grad_norm_(group, clip if clip > 0 else float("inf")))
                 for group in self.clip_sets]
        return math.sqrt(sum(n * n for n in norms))

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(), "step": self.step,
                "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the optimiser, scaler and counters. The optimiser state carries the lr of the old
        schedule; the config's schedule at the restored step decides (identical unless the resumed
        config changed it). A "scheduler" entry of older checkpoints is ignored."""
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.apply_lr()
