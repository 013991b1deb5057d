import math

import pytest
import torch

from lift.metrics.flow import endpoint_error, epe_stats, reference_epe, tvl1_flow, warp_error


def _translated_pair(frames: torch.Tensor, u: int, v: int, size=(48, 64)):
    """(target, source, flow_gt) of real footage where source is the target moved by (-u, -v):
    target(x, y) = source(x + u, y + v), i.e. the backward flow from target to source is (u, v)."""
    h, w = size
    y0, x0 = 40, 50
    frame = frames[3:4]
    target = frame[..., y0:y0 + h, x0:x0 + w]
    source = frame[..., y0 - v:y0 - v + h, x0 - u:x0 - u + w]
    flow = torch.empty(1, 2, h, w)
    flow[:, 0], flow[:, 1] = float(u), float(v)
    return target.contiguous(), source.contiguous(), flow


def test_epe_is_zero_for_ground_truth_and_grows_with_injected_error():
    gen = torch.Generator().manual_seed(0)
    gt = torch.randn(3, 2, 2, 24, 32, generator=gen) * 4  # [B, N, 2, H, W]: one flow per input
    stats = epe_stats(gt, gt)
    assert set(stats) == {"epe", "epe_gt1", "epe_gt3"}
    assert all(v.shape == (3, 2) and torch.count_nonzero(v) == 0 for v in stats.values())
    noise = torch.randn(gt.shape, generator=gen)
    epes = [epe_stats(gt + s * noise, gt)["epe"].mean().item() for s in (0.25, 1.0, 4.0)]
    assert 0 < epes[0] < epes[1] < epes[2]
    # A constant error of (3, 4) px: EPE 5 everywhere, above both thresholds.
    shifted = gt + torch.tensor([3.0, 4.0]).view(1, 1, 2, 1, 1)
    s = epe_stats(shifted, gt)
    assert torch.allclose(s["epe"], torch.full((3, 2), 5.0)) and (s["epe_gt3"] == 1).all()
    half = gt.clone()
    half[..., :12, :] += torch.tensor([2.0, 0.0]).view(1, 1, 2, 1, 1)  # 2 px error on half the pixels
    s = epe_stats(half, gt)
    assert torch.allclose(s["epe_gt1"], torch.full((3, 2), 0.5)) and (s["epe_gt3"] == 0).all()
    assert torch.allclose(s["epe"], torch.full((3, 2), 1.0))


def test_epe_ignores_occluded_pixels():
    gt = torch.zeros(2, 2, 16, 16)
    flow = gt.clone()
    flow[:, :, :, :8] = 10.0  # wrong only where the target is occluded
    valid = torch.ones(2, 1, 16, 16)
    valid[:, :, :, :8] = 0
    assert epe_stats(flow, gt, valid)["epe"].tolist() == [0.0, 0.0]
    assert epe_stats(flow, gt)["epe"][0].item() == pytest.approx(10 * math.sqrt(2) / 2)
    nothing = epe_stats(flow, gt, torch.zeros_like(valid))
    assert torch.isnan(nothing["epe"]).all()


def test_warp_error_of_known_translation_on_real_frames(real_frames):
    target, source, flow = _translated_pair(real_frames, u=3, v=2)
    exact = warp_error(flow, source, target)
    zero = warp_error(torch.zeros_like(flow), source, target)
    wrong = warp_error(-flow, source, target)  # the opposite direction convention
    assert exact.shape == (1,)
    assert exact.item() < 1e-6
    assert zero.item() > 0.01 and wrong.item() > zero.item()
    # Leading dims are kept: [B, N, ...] in, [B, N] out.
    both = warp_error(torch.stack([flow, torch.zeros_like(flow)], 1), torch.stack([source, source], 1),
                      target.unsqueeze(1))
    assert both.shape == (1, 2) and both[0, 0] < 1e-6 and both[0, 1] == pytest.approx(zero.item())


def test_tvl1_reference_flow_is_backward_and_in_uv_order(real_frames):
    target, source, flow = _translated_pair(real_frames, u=3, v=-2)
    ref = tvl1_flow(target, source)
    assert ref.shape == (1, 2, 48, 64)
    inner = ref[0, :, 8:-8, 8:-8].flatten(1).median(dim=1).values
    assert inner[0].item() == pytest.approx(3.0, abs=0.3)  # u: x displacement first
    assert inner[1].item() == pytest.approx(-2.0, abs=0.3)  # v: y displacement second
    assert reference_epe(flow, target, source).item() < 0.5
    assert reference_epe(torch.zeros_like(flow), target, source).item() > 3.0


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(1, 3, 8, 8\)"):
        epe_stats(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        endpoint_error(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(ValueError, match="valid mask"):
        epe_stats(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 4, 4))
