from __future__ import annotations

import math

import pytest
import torch

from lift.model.warp import backward_warp, backward_warp_many, samples_inside


def _image(h: int = 12, w: int = 16, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_zero_flow_is_identity():
    img = _image()
    out = backward_warp(img, torch.zeros(2, 2, 12, 16))
    torch.testing.assert_close(out, img, atol=1e-5, rtol=0)  # float rounding of the grid only


@pytest.mark.parametrize("u,v", [(1, 0), (0, 2), (-3, 1), (2, -2)])
def test_integer_translation_is_exact(u, v):
    img = _image()
    flow = torch.zeros(2, 2, 12, 16)
    flow[:, 0], flow[:, 1] = float(u), float(v)
    out = backward_warp(img, flow)
    h, w = img.shape[-2:]
    # out(x, y) = img(x + u, y + v) wherever that lies inside the image.
    ys = slice(max(0, -v), min(h, h - v))
    xs = slice(max(0, -u), min(w, w - u))
    src_ys = slice(ys.start + v, ys.stop + v)
    src_xs = slice(xs.start + u, xs.stop + u)
    torch.testing.assert_close(out[..., ys, xs], img[..., src_ys, src_xs], atol=1e-5, rtol=0)


def test_border_padding_repeats_the_edge():
    img = _image()
    flow = torch.zeros(2, 2, 12, 16)
    flow[:, 0] = 100.0  # every sample far to the right of the frame
    out = backward_warp(img, flow)
    expected = img[..., :, -1:].expand_as(img)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_per_pixel_flow_and_channels():
    img = _image(c=5)
    flow = torch.zeros(2, 2, 12, 16)
    flow[0, 0, 3, 4] = 2.0  # only one pixel of the first sample looks elsewhere
    flow[0, 1, 3, 4] = 1.0
    out = backward_warp(img, flow)
    torch.testing.assert_close(out[0, :, 4, 6], img[0, :, 4, 6], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, :, 3, 4], img[0, :, 4, 6], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], img[1], atol=1e-5, rtol=0)


def test_half_pixel_flow_interpolates_linearly():
    img = _image()
    flow = torch.zeros(2, 2, 12, 16)
    flow[:, 0] = 0.5
    out = backward_warp(img, flow)
    expected = 0.5 * (img[..., :, :-1] + img[..., :, 1:])
    torch.testing.assert_close(out[..., :, :-1], expected, atol=1e-5, rtol=0)


def test_gradient_reaches_image_and_flow():
    img = _image().requires_grad_(True)
    flow = torch.full((2, 2, 12, 16), 0.3, requires_grad=True)
    backward_warp(img, flow).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert flow.grad is not None and flow.grad.abs().sum() > 0


def test_low_precision_flow_is_sampled_in_float32():
    img = _image(h=16, w=320)
    flow = torch.zeros(2, 2, 16, 320, dtype=torch.bfloat16)
    flow[:, 0] = 1.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = backward_warp(img, flow)
    assert out.dtype == torch.float32
    # Exact up to float32 grid rounding even where bf16 could not represent the pixel index
    # (x > 256: bf16 sampling would be off by up to a pixel).
    torch.testing.assert_close(out[..., :, :-1], img[..., :, 1:], atol=1e-4, rtol=0)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="flow"):
        backward_warp(_image(), torch.zeros(2, 3, 12, 16))
    with pytest.raises(ValueError, match="differ"):
        backward_warp(_image(), torch.zeros(2, 2, 12, 15))


def test_ground_truth_flow_reproduces_target(make_window):
    """Anchors and references warped with the exact flow match the target where not occluded."""
    win = make_window(7, size=(32, 48), velocity=(2, -1), temporal_offset=2)
    warped = backward_warp(win.frames, win.flow_gt)
    valid = win.valid.expand_as(warped).bool()
    assert valid.float().mean() > 0.5
    err = (warped - win.target.expand_as(warped)).abs()[valid]
    assert err.max() < 1e-5
    # Without the flow the frames do not match: the test can fail.
    assert (win.frames - win.target).abs().mean() > 0.02


def test_subpixel_ground_truth_flow_on_smooth_texture():
    """A band-limited texture shifted by a fractional amount is recovered by bilinear warping."""
    h, w = 24, 32
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")

    def texture(dx: float, dy: float) -> torch.Tensor:
        x, y = xs - dx, ys - dy
        r = 0.5 + 0.25 * torch.sin(2 * math.pi * x / 13.0) + 0.2 * torch.cos(2 * math.pi * y / 11.0)
        g = 0.5 + 0.3 * torch.sin(2 * math.pi * (x + y) / 17.0)
        b = 0.5 + 0.3 * torch.cos(2 * math.pi * (x - 2 * y) / 19.0)
        return torch.stack((r, g, b)).float()

    target = texture(0.0, 0.0)
    moved = texture(1.5, -0.75)  # content moved by (+1.5, -0.75): target (x, y) = moved (x+1.5, y-0.75)
    flow = torch.empty(1, 2, h, w)
    flow[:, 0], flow[:, 1] = 1.5, -0.75
    warped = backward_warp(moved[None], flow)[0]
    inner = (slice(None), slice(2, -2), slice(2, -2))
    assert (warped[inner] - target[inner]).abs().mean() < 0.01
    assert (moved[inner] - target[inner]).abs().mean() > 0.05


def test_synthetic_dataset_flow_reproduces_target_where_valid():
    """The synthetic dataset's flow_gt/valid follow the warp's convention (lift.data.synthetic)."""
    from lift.config import DataConfig
    from lift.data import build_dataset

    ds = build_dataset(DataConfig(dataset="synthetic", window=7, crop_size=[32, 48], max_sequences=1), "val")
    for index in range(min(3, len(ds))):
        sample = ds[index]
        warped = backward_warp(sample["frames"], sample["flow_gt"])
        valid = sample["valid"].expand_as(warped).bool()
        assert valid.float().mean() > 0.5, sample["sample_id"]
        err = (warped - sample["target"].expand_as(warped)).abs()
        assert err[valid].max() < 1e-4, sample["sample_id"]
        # The anchors alone, unwarped, do not match: the flows carry real motion.
        assert (sample["frames"][:2] - sample["target"]).abs().mean() > 0.01


def test_warping_with_many_flows_equals_warping_with_each():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 12, 10)
    flows = torch.randn(2, 5, 2, 12, 10) * 3
    many = backward_warp_many(image, flows)
    assert many.shape == (2, 5, 3, 12, 10)
    for k in range(5):
        torch.testing.assert_close(many[:, k], backward_warp(image, flows[:, k]))
    with pytest.raises(ValueError, match="backward_warp_many: expected image"):
        backward_warp_many(image, flows[:1])


def test_samples_inside_marks_where_the_warp_would_repeat_the_border():
    flow = torch.zeros(1, 2, 4, 5)
    flow[0, 0] = 2.0  # every pixel samples 2 px to the right
    inside = samples_inside(flow)
    assert inside.shape == (1, 1, 4, 5)
    torch.testing.assert_close(inside[0, 0], torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]]).expand(4, 5))
