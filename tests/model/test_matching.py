"""lift.model.matching: the parameter-free search that aligns the references with each other."""

from __future__ import annotations

import pytest
import torch

from lift.model.matching import OUT_OF_FRAME_COST, SEARCH_RADII, align_references, match_flows, matching_cost


def _interior(flows: torch.Tensor, border: int) -> torch.Tensor:
    return flows[..., border:-border, border:-border]


def _epe(found: torch.Tensor, expected: torch.Tensor, border: int = 8) -> float:
    return float(_interior((found - expected).norm(dim=-3), border).mean())


@pytest.mark.parametrize("velocity", [(2, 1), (-1, 2), (0, -2)])  # 4-4.5 px, within the reach
def test_a_symmetric_pair_is_aligned_from_no_motion(make_window, velocity):
    # The first reference pair of window 5: frames 2 source frames before and after the target.
    win = make_window(5, size=(48, 48), velocity=velocity)
    left, right = win.frames[2:3], win.frames[3:4]
    exact = win.flow_gt[2:4].unsqueeze(0)  # [1, 2, 2, H, W]
    delta = (win.times[2:4] - win.timestep).unsqueeze(0)
    found = match_flows(left, right, torch.zeros_like(exact), delta[:, 1] / delta[:, 0])
    assert _epe(found, exact) < 0.5 < _epe(torch.zeros_like(exact), exact)


def test_a_reference_is_aligned_with_a_fixed_neighbour(make_window):
    win = make_window(7, size=(48, 48), velocity=(2, -1))
    target, far = win.target.unsqueeze(0), win.frames[3:4]  # the second left reference
    exact = win.flow_gt[3].unsqueeze(0)
    start = exact + torch.tensor([2.0, -1.5]).view(1, 2, 1, 1)  # an extrapolation 2.5 px off
    flows = torch.stack((start, torch.zeros_like(start)), 1)  # the neighbour (here the target) stays
    found = match_flows(far, target, flows, None)
    assert _epe(found[:, 0], exact) < 0.5
    assert torch.equal(found[:, 1], flows[:, 1])


def test_textureless_frames_keep_the_start():
    # Every candidate costs the same, so the soft-argmin is the window's centre: the start. (Near
    # the border, candidates that sample outside the frame cost more, which pushes inwards.)
    flat = torch.full((1, 3, 48, 48), 0.4)
    start = torch.randn(1, 2, 2, 1, 1, generator=torch.Generator().manual_seed(0)).expand(1, 2, 2, 48, 48) * 0.3
    found = match_flows(flat, flat, start.clone(), torch.tensor([-1.0]))
    torch.testing.assert_close(_interior(found, 12), _interior(start, 12), atol=1e-4, rtol=0)


def test_samples_outside_the_frame_cost_the_maximum():
    frame = torch.rand(1, 3, 16, 16)
    inside = torch.zeros(1, 1, 2, 16, 16)
    outside = inside.clone()
    outside[:, :, 0] = 40.0  # 40 px to the right of a 16 px frame
    cost = matching_cost(frame, frame, torch.cat((inside, outside), 1), torch.cat((inside, inside), 1))
    assert cost.shape == (1, 2, 16, 16)
    assert float(cost[0, 0].max()) == 0.0
    # (The 3x3 average counts the zero padding at the frame's edge, alike for every candidate.)
    torch.testing.assert_close(_interior(cost[0, 1], 1), torch.full((14, 14), OUT_OF_FRAME_COST))


def test_the_search_reach_covers_the_known_answer_motion():
    # Coarse levels count double: the whole search reaches this many pixels of the given frames.
    reach = sum(r * 2 ** (len(SEARCH_RADII) - 1 - i) for i, r in enumerate(SEARCH_RADII))
    # The nearest pair of the known-answer data moves 2 x 4.3 px at most, seen at half resolution.
    assert reach >= 2 * 4.3 / 2


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="match_flows: expected flows"):
        match_flows(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 8), None)


def _pair(win, index: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frames [1, 2, 3, H, W], exact flows [1, 2, 2, H, W], delta [1, 2]) of two inputs of `win`."""
    return (win.frames[index].unsqueeze(0), win.flow_gt[index].unsqueeze(0),
            (win.times[index] - win.timestep).unsqueeze(0))


def test_a_right_start_stays_right_up_to_the_border(make_window):
    # Near the border a right flow samples outside the other frame; the cost there says nothing,
    # and a wrong flow that happens to sample inside must not replace it.
    win = make_window(7, size=(32, 32), velocity=(2, 1))
    frames, exact, delta = _pair(win, [2, 4])  # the nearest pair, 4 px and 2 px apart per side
    found = match_flows(frames[:, 0], frames[:, 1], exact.clone(), delta[:, 1] / delta[:, 0])
    assert (found - exact).abs().max() < 0.05


def test_the_nearest_pair_is_found_from_no_motion_when_the_anchors_are_far_off(make_window):
    win = make_window(5, size=(48, 48), velocity=(2, -1))
    frames, exact, delta = _pair(win, [2, 3])
    garbage = -exact * 2  # extrapolated from anchor flows pointing the wrong way
    found = align_references(frames, garbage, delta, inner=None)
    assert _epe(found, exact) < 0.5


def test_a_farther_reference_is_aligned_against_its_aligned_neighbour(make_window):
    win = make_window(7, size=(48, 48), velocity=(1, 1))
    frames, exact, delta = _pair(win, [3, 5])  # the second pair
    inner = win.target.expand(1, 2, 3, 48, 48)  # the inner pair, aligned: the target itself
    start = exact + torch.tensor([0.8, -0.6]).view(1, 1, 2, 1, 1)
    found = align_references(frames, start, delta, inner)
    assert _epe(found, exact) < 0.5 * _epe(start, exact)
