from __future__ import annotations

import importlib.util

import pytest
import torch

from lift.config import LossConfig, ModelConfig
from lift.model import LIFTLoss, build_model
from lift.model.losses import census_loss, laplacian_l1, laplacian_pyramid, smoothness_loss

ALL_OFF = dict(reconstruction=1.0, teacher=0.0, distillation=0.0, lpips=0.0, census=0.0, smoothness=0.0,
               reference_reconstruction=0.0, anchor_reconstruction=0.0)


def _images(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=gen), torch.rand(2, 3, size, size, generator=gen)


def test_laplacian_pyramid_reconstructs_the_image_and_handles_tiny_inputs():
    img, _ = _images()
    levels = laplacian_pyramid(img, 4)
    assert [lv.shape[-1] for lv in levels] == [32, 16, 8, 4]
    # Collapsing the pyramid gives the image back (each band is level - upsampled(next)).
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        rec = band + torch.nn.functional.interpolate(rec, size=band.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(rec, img)
    tiny = torch.rand(1, 3, 3, 5)
    assert len(laplacian_pyramid(tiny, 8)) <= 3
    assert torch.isfinite(laplacian_l1(tiny, tiny * 0.5, 8))


def test_laplacian_l1_is_zero_only_for_equal_images():
    a, b = _images()
    assert laplacian_l1(a, a, 5).item() == 0.0
    assert laplacian_l1(a, b, 5).item() > 0.1


def test_census_is_robust_to_brightness_but_not_to_structure():
    a, _ = _images()
    a = a * 0.5 + 0.25
    assert census_loss(a, a).item() == 0.0
    brighter = census_loss(a + 0.1, a).item()
    shifted = census_loss(torch.roll(a, 3, dims=-1), a).item()
    assert brighter < 1e-6 < shifted
    assert laplacian_l1(a + 0.1, a, 5).item() > 0.09  # the pixel loss does see a brightness change


def test_smoothness_is_edge_aware():
    flat = torch.full((1, 3, 16, 16), 0.5)
    edge = flat.clone()
    edge[..., 8:] = 1.0  # a vertical image edge between columns 7 and 8
    flows = torch.zeros(1, 2, 2, 16, 16)
    assert smoothness_loss(flows + 3.0, flat).item() == 0.0
    flows[..., 8:] = 4.0  # a motion boundary on the same column
    on_edge = smoothness_loss(flows, edge).item()
    in_flat = smoothness_loss(flows, flat).item()
    assert 0 < on_edge < 0.05 * in_flat


def _forward(window: int = 3, target_given: bool = True):
    torch.manual_seed(0)
    model = build_model(ModelConfig(width=0.25, block_depth=1), window)
    frames = torch.rand(2, window - 1, 3, 32, 32)
    times = torch.tensor([0.0, 1.0, -0.5, 1.5, -1.0, 2.0])[: window - 1].expand(2, -1)
    target = torch.rand(2, 3, 32, 32)
    pred, aux = model(frames, times, torch.full((2,), 0.5), target if target_given else None)
    return pred, aux, target


def test_total_is_the_weighted_sum_and_zero_weights_skip_terms():
    pred, aux, target = _forward(5)
    cfg = LossConfig(reconstruction=1.0, teacher=0.5, distillation=0.01, census=0.2, smoothness=0.3,
                     reference_reconstruction=0.7, anchor_reconstruction=0.4)
    total, parts = LIFTLoss(cfg)(pred, aux, target)
    assert set(parts) == {"reconstruction", "teacher", "distillation", "census", "smoothness",
                          "reference_reconstruction", "anchor_reconstruction"}
    expected = (parts["reconstruction"] + 0.5 * parts["teacher"] + 0.01 * parts["distillation"]
                + 0.2 * parts["census"] + 0.3 * parts["smoothness"] + 0.7 * parts["reference_reconstruction"]
                + 0.4 * parts["anchor_reconstruction"])
    torch.testing.assert_close(total, expected)
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0 for v in parts.values())
    total, parts = LIFTLoss(LossConfig(**ALL_OFF))(pred, aux, target)
    assert set(parts) == {"reconstruction"}
    torch.testing.assert_close(total, parts["reconstruction"])


@pytest.mark.parametrize("term", ["teacher", "distillation", "census", "smoothness", "reference_reconstruction",
                                  "anchor_reconstruction"])
def test_each_term_responds_to_its_weight_alone(term: str):
    """Raising one weight adds exactly weight x that term to the total, and leaves the others unchanged."""
    pred, aux, target = _forward(5)
    base = LossConfig(**ALL_OFF)
    off_total, off_parts = LIFTLoss(base)(pred, aux, target)
    assert term not in off_parts
    for weight in (0.25, 2.0):
        total, parts = LIFTLoss(LossConfig(**{**ALL_OFF, term: weight}))(pred, aux, target)
        assert set(parts) == {"reconstruction", term} and parts[term] > 0
        torch.testing.assert_close(parts["reconstruction"], off_parts["reconstruction"])
        torch.testing.assert_close(total, off_total + weight * parts[term])


def test_the_default_objective_is_rifes_weighted_sum_plus_the_anchor_term():
    """Window 3's default total: RIFE's reconstruction + teacher + 0.01 x distillation, plus the
    anchor term that every window shares; without that term it is RIFE's exactly."""
    pred, aux, target = _forward(3)
    total, parts = LIFTLoss(LossConfig())(pred, aux, target)
    assert set(parts) == {"reconstruction", "teacher", "distillation", "anchor_reconstruction"}
    rife = parts["reconstruction"] + parts["teacher"] + 0.01 * parts["distillation"]
    torch.testing.assert_close(total, rife + parts["anchor_reconstruction"])
    total, parts = LIFTLoss(LossConfig(anchor_reconstruction=0.0))(pred, aux, target)
    assert set(parts) == {"reconstruction", "teacher", "distillation"}
    torch.testing.assert_close(total, rife)


def test_teacher_terms_are_skipped_without_teacher_outputs():
    pred, aux, target = _forward(3, target_given=False)
    total, parts = LIFTLoss(LossConfig())(pred, aux, target)
    assert set(parts) == {"reconstruction", "anchor_reconstruction"}


def test_loss_runs_in_float32_under_autocast():
    pred, aux, target = _forward(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, parts = LIFTLoss(LossConfig(census=1.0, smoothness=1.0))(pred.bfloat16(), aux, target)
    assert total.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in parts.values())


def test_shape_mismatch_is_named():
    pred, aux, target = _forward(3)
    with pytest.raises(ValueError, match="pred and target"):
        LIFTLoss(LossConfig())(pred, aux, target[:, :, :16])


@pytest.mark.skipif(importlib.util.find_spec("lift.metrics.lpips") is None,
                    reason="lift.metrics.lpips (the LPIPS metric module) is not in this checkout")
def test_lpips_term_is_differentiable_and_kept_out_of_the_state():
    pred, aux, target = _forward(3)
    loss = LIFTLoss(LossConfig(lpips=0.5, teacher=0.0, distillation=0.0, anchor_reconstruction=0.0))
    total, parts = loss(pred, aux, target)
    assert parts["lpips"].item() > 0
    torch.testing.assert_close(total, parts["reconstruction"] + 0.5 * parts["lpips"])
    grad = torch.autograd.grad(parts["lpips"], pred)[0]
    assert grad.abs().sum() > 0
    assert list(loss.parameters()) == [] and loss.state_dict() == {}
    assert loss(target, aux, target)[1]["lpips"].item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("window", [3, 5])
def test_anchor_reconstruction_is_the_same_term_for_every_window(window: int):
    # One objective for every arm: window 3 is supervised on its anchors' estimate like window 5.
    cfg = LossConfig(**{**ALL_OFF, "anchor_reconstruction": 0.5})
    pred, aux, target = _forward(window)
    total, parts = LIFTLoss(cfg)(pred, aux, target)
    expected = laplacian_l1(aux["student_preds"][-1], target, cfg.pyramid_levels)
    torch.testing.assert_close(parts["anchor_reconstruction"], expected)
    torch.testing.assert_close(total, parts["reconstruction"] + 0.5 * expected)
    # The anchors' estimate is not the prediction: RIFE's U-Net refines it (and references join it).
    assert not torch.equal(aux["student_preds"][-1], pred)
