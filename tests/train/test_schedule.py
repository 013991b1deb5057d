"""Warm-up then cosine learning rate through torch.optim.lr_scheduler.LambdaLR."""

from __future__ import annotations

import math

import pytest
import torch

from lift.config import Config, apply_overrides
from lift.train import WarmupCosine, build_scheduler


def _lrs(cfg: Config, total: int) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=cfg.optim.lr)
    sched = build_scheduler(opt, cfg, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out.append(opt.param_groups[0]["lr"])
    return out


def test_warmup_rises_linearly_then_cosine_reaches_min_lr() -> None:
    cfg = apply_overrides(Config(), {"optim.lr": 1e-3, "optim.min_lr": 1e-5, "optim.warmup_steps": 4})
    lrs = _lrs(cfg, 20)
    assert lrs[:5] == pytest.approx([1e-3 * k / 5 for k in range(1, 5)] + [1e-3])
    assert max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone decay after warm-up
    assert lrs[-1] == pytest.approx(1e-5)
    mid = 4 + 8  # half-way through the cosine
    assert lrs[mid] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_constant_schedule_and_no_warmup() -> None:
    cfg = apply_overrides(Config(), {"optim.scheduler": "constant", "optim.warmup_steps": 0, "optim.lr": 2e-4})
    assert _lrs(cfg, 6) == pytest.approx([2e-4] * 7)
    assert WarmupCosine(0, 10, 0.1)(10) == pytest.approx(0.1)
