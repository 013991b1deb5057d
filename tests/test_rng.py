"""lift.rng: seeds from integers, and every generator's state captured and restored."""

from __future__ import annotations

import random

import numpy as np
import torch

from lift.rng import capture_rng_state, mix_seed, restore_rng_state, seed_everything


def test_rng_states_restore_every_generator() -> None:
    state = capture_rng_state()
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(np.random.randn()))
    random.random(), np.random.rand(5), torch.rand(5)
    restore_rng_state(state)
    again = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(np.random.randn()))
    assert first == again


def test_seed_everything_repeats_every_generator() -> None:
    seed_everything(5)
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    seed_everything(5)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first


def test_mix_seed_is_stable_and_spreads_nearby_inputs() -> None:
    assert mix_seed(1, 2) == mix_seed(1, 2)
    seeds = {mix_seed(0, epoch) for epoch in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**32 for s in seeds)
    assert mix_seed(1, 2) != mix_seed(2, 1)
