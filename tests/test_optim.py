"""lift.optim: get_lr (warm-up then cosine or constant, a pure function of the step) and the Updater."""

from __future__ import annotations

import math

import pytest
import torch

from lift.config import Config, apply_overrides
from lift.logging import TensorBoardLogger
from lift.optim import NonFiniteLossError, Updater, get_lr


def _lrs(cfg: Config, total: int) -> list[float]:
    return [get_lr(step, cfg.optim, total) for step in range(total + 1)]


def test_warmup_rises_linearly_then_cosine_reaches_min_lr() -> None:
    cfg = apply_overrides(Config(), {"optim.lr": 1e-3, "optim.min_lr": 1e-5, "optim.warmup_steps": 4})
    lrs = _lrs(cfg, 20)
    assert lrs[:5] == pytest.approx([1e-3 * k / 5 for k in range(1, 5)] + [1e-3])
    assert max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone decay after warm-up
    assert lrs[-1] == pytest.approx(1e-5)
    mid = 4 + 8  # half-way through the cosine
    assert lrs[mid] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert get_lr(500, cfg.optim, 20) == pytest.approx(1e-5)  # past the end: the floor


def test_constant_schedule_and_no_warmup() -> None:
    cfg = apply_overrides(Config(), {"optim.scheduler": "constant", "optim.warmup_steps": 0, "optim.lr": 2e-4})
    assert _lrs(cfg, 6) == pytest.approx([2e-4] * 7)
    cosine = apply_overrides(Config(), {"optim.warmup_steps": 0, "optim.lr": 1.0, "optim.min_lr": 0.1})
    assert get_lr(0, cosine.optim, 10) == pytest.approx(1.0)
    assert get_lr(10, cosine.optim, 10) == pytest.approx(0.1)


def test_same_step_same_value_whatever_came_before() -> None:
    cfg = apply_overrides(Config(), {"optim.lr": 3e-4, "optim.min_lr": 1e-6, "optim.warmup_steps": 3})
    forward = _lrs(cfg, 30)
    backward = [get_lr(step, cfg.optim, 30) for step in reversed(range(31))][::-1]
    assert forward == backward  # exactly equal: no hidden state


def _updater(**overrides: object) -> tuple[Updater, torch.nn.Module]:
    values = {"optim.lr": 1e-3, "optim.min_lr": 1e-5, "optim.warmup_steps": 2, "train.amp": "off"}
    values.update(overrides)
    cfg = apply_overrides(Config(), values)
    model = torch.nn.Linear(2, 2)
    return Updater(cfg, model, False, torch.device("cpu"), TensorBoardLogger("", enabled=False)), model


def test_the_updater_applies_the_schedule_at_its_step() -> None:
    updater, model = _updater()
    optim = updater.cfg.optim
    updater.set_total_steps(10)
    assert len(updater.optimizer.param_groups) == 2  # weights decayed, biases not: both follow the schedule
    assert {g["lr"] for g in updater.optimizer.param_groups} == {get_lr(0, optim, 10)}
    model(torch.ones(1, 2)).sum().backward()
    assert updater.update(1, None, epoch=0) is not None
    assert updater.step == 1 and updater.lr == get_lr(1, optim, 10)
    state = updater.state_dict()
    assert "scheduler" not in state
    state.update(step=7, scheduler={"last_epoch": 3, "_last_lr": [9.0]})  # an old checkpoint's entry is ignored
    updater.load_state_dict(state)
    assert {g["lr"] for g in updater.optimizer.param_groups} == {get_lr(7, optim, 10)}


def test_non_finite_steps_are_skipped_then_stop_the_run() -> None:
    updater, model = _updater(**{"train.max_nonfinite_steps": 2})
    weight = model.weight.detach().clone()
    assert updater.update(1, "loss is nan", epoch=0) is None
    assert (updater.step, updater.skipped_steps) == (0, 1) and torch.equal(model.weight, weight)
    with pytest.raises(NonFiniteLossError, match=r"2 consecutive steps had a non-finite loss"):
        updater.update(1, "loss is nan", epoch=0)


def test_the_anchor_path_trains_at_its_fraction_of_the_rate_and_a_frozen_one_not_at_all() -> None:
    from lift.config import load_config  # noqa: PLC0415 (only this test builds a model)
    from lift.model import build_model  # noqa: PLC0415

    cfg = load_config(None, ["model.width=0.125", "model.block_depth=1", "data.window=5", "optim.lr=1e-3",
                             "optim.warmup_steps=0", "optim.backbone_lr_scale=0.1", "train.amp=off"])
    model = build_model(cfg.model, cfg.data.window)
    updater = Updater(cfg, model, False, torch.device("cpu"), TensorBoardLogger("", enabled=False))
    reference = {id(p) for p in model.reference_parameters()}
    for group in updater.optimizer.param_groups:
        in_backbone = {id(p) in reference for p in group["params"]} == {False}
        assert group["lr"] == pytest.approx(1e-4 if in_backbone else 1e-3)
    assert sum(len(g["params"]) for g in updater.optimizer.param_groups) == len(list(model.parameters()))
    frozen = build_model(apply_overrides(cfg, {"model.freeze_backbone": True}).model, cfg.data.window)
    trainable = [p for p in frozen.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in frozen.reference_parameters()}


def test_gradients_are_clipped_per_path() -> None:
    """The anchor path's clipped gradient does not depend on the reference path's gradient."""
    from lift.config import load_config  # noqa: PLC0415 (only these tests build a model)
    from lift.model import build_model  # noqa: PLC0415

    cfg = load_config(None, ["model.width=0.125", "model.block_depth=1", "data.window=5", "optim.grad_clip=1.0",
                             "train.amp=off"])
    anchor_grads = []
    for reference_scale in (1.0, 1000.0):
        model = build_model(cfg.model, cfg.data.window)
        updater = Updater(cfg, model, False, torch.device("cpu"), TensorBoardLogger("", enabled=False))
        reference = {id(p) for p in model.reference_parameters()}
        for p in model.parameters():
            p.grad = torch.full_like(p, reference_scale if id(p) in reference else 1.0)
        total = updater.clip_gradients()
        assert total > 1.0  # both paths were clipped, each to norm 1
        anchor_grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if id(p) not in reference]))
    assert len(updater.clip_sets) == 2
    assert torch.equal(anchor_grads[0], anchor_grads[1])
