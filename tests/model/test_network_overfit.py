"""A tiny model must be able to fit a handful of windows: the losses and gradients are wired so
that learning happens, for the control arm (window 3) and with references (window 7)."""

from __future__ import annotations

import pytest
import torch

from lift.config import LossConfig, ModelConfig
from lift.model import LIFTLoss, build_model

STEPS = 40


@pytest.mark.parametrize("window", [3, 7])
def test_tiny_model_overfits_a_handful_of_windows(window, make_batch):
    torch.manual_seed(0)
    frames, times, timestep, target = make_batch(window, batch=4)
    model = build_model(ModelConfig(width=0.25, block_depth=1), window).train()
    loss_fn = LIFTLoss(LossConfig())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(STEPS):
        pred, aux = model(frames, times, timestep, target)
        total, _ = loss_fn(pred, aux, target)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    start, end = history[0], sum(history[-5:]) / 5
    assert start / end > 5, f"loss fell only from {start:.4f} to {end:.4f}"
    model.eval()
    with torch.no_grad():
        pred, _ = model(frames, times, timestep)
    blend = 0.5 * (frames[:, 0] + frames[:, 1])
    # The fitted model interpolates the motion far better than averaging the anchors.
    assert (pred - target).abs().mean() < 0.3 * (blend - target).abs().mean()
