"""lift.model.blocks: the building blocks' contracts (shapes, flow scaling, zero start). The
parameter shapes against the official RIFE-m are in test_network_rife_parity.py."""

from __future__ import annotations

import pytest
import torch

from lift.model.blocks import FlowBlock, resize_flow, time_encoding


def test_resize_flow_scales_the_vectors_with_the_grid() -> None:
    flow = torch.zeros(1, 2, 8, 12)
    flow[:, 0], flow[:, 1] = 3.0, -2.0  # pixels of the 8x12 grid
    big = resize_flow(flow, (16, 24))
    assert big.shape == (1, 2, 16, 24)
    assert torch.allclose(big[:, 0], torch.full((1, 16, 24), 6.0)) and torch.allclose(big[:, 1], torch.full((1, 16, 24), -4.0))


def test_flow_block_returns_full_resolution_flow_and_extra_maps() -> None:
    torch.manual_seed(0)
    block = FlowBlock(in_channels=7, channels=16, depth=1, flow_channels=4, extra_channels=1, flow_input=False)
    flow, extra = block(torch.rand(2, 7, 32, 48), None, scale=2)
    assert flow.shape == (2, 4, 32, 48) and extra.shape == (2, 1, 32, 48)
    assert flow.abs().sum() > 0


def test_a_zero_initialised_block_starts_at_exactly_zero() -> None:
    block = FlowBlock(in_channels=8, channels=16, depth=1, flow_channels=2, zero_init=True)
    flow, extra = block(torch.rand(1, 8, 16, 16), torch.rand(1, 2, 16, 16), scale=1)
    assert torch.count_nonzero(flow) == 0 and extra.shape[1] == 0


def test_a_refining_block_needs_a_flow() -> None:
    block = FlowBlock(in_channels=8, channels=16, depth=1, flow_channels=2)
    with pytest.raises(ValueError, match="none was given"):
        block(torch.rand(1, 8, 16, 16), None, scale=1)


def test_time_encoding_tells_past_from_future_and_near_from_far() -> None:
    enc = time_encoding(torch.tensor([-4.0, -1.0, 1.0, 4.0]))
    assert len({tuple(row.tolist()) for row in enc.reshape(4, -1)}) == 4
