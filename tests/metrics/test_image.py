import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lift.metrics.image import psnr, quantize, ssim


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy().astype(np.float64)


def _predictions(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Realistic (prediction, target) pairs from real frames: neighbour, blend + noise, blur."""
    gen = torch.Generator().manual_seed(0)
    target = frames[1:4]
    blend = 0.5 * (frames[0:3] + frames[2:5])
    noisy = (blend + 0.03 * torch.randn(blend.shape, generator=gen)).clamp(0, 1)
    blurred = F.avg_pool2d(F.pad(target, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    pred = torch.cat([frames[0:3], noisy, blurred])
    return pred, torch.cat([target, target, target])


def test_standard_protocol_equals_skimage_on_real_frames(real_frames):
    pred, target = _predictions(real_frames)
    ours_p = psnr(pred, target)
    ours_s = ssim(pred, target)
    assert ours_p.shape == ours_s.shape == (pred.shape[0],)
    for i in range(pred.shape[0]):
        ref_p = peak_signal_noise_ratio(_hwc(target[i]), _hwc(pred[i]), data_range=1)
        ref_s = structural_similarity(_hwc(target[i]), _hwc(pred[i]), gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1, channel_axis=-1)
        assert abs(ours_p[i].item() - ref_p) < 1e-4, (i, ours_p[i].item(), ref_p)
        assert abs(ours_s[i].item() - ref_s) < 1e-4, (i, ours_s[i].item(), ref_s)
    # The pairs differ enough that a wrong formula could not pass by accident.
    assert ours_s.max() - ours_s.min() > 0.05


def test_batched_result_equals_per_sample(real_frames):
    pred, target = _predictions(real_frames)
    batched = ssim(pred, target)
    single = torch.cat([ssim(pred[i:i + 1], target[i:i + 1]) for i in range(pred.shape[0])])
    assert torch.allclose(batched, single, atol=1e-7)


def test_identical_images_give_infinite_psnr_and_unit_ssim(real_frames):
    x = real_frames[:2]
    for protocol in ("standard", "rife"):
        assert torch.isinf(psnr(x, x, protocol)).all() and (psnr(x, x, protocol) > 0).all()
        assert torch.allclose(ssim(x, x, protocol), torch.ones(2, dtype=torch.float64), atol=1e-6)


def test_rife_psnr_known_case():
    target = torch.zeros(1, 3, 4, 4)
    # 0.6/255 rounds to level 1: RIFE-protocol MSE = (1/255)^2, PSNR = 20 log10(255).
    pred = torch.full_like(target, 0.6 / 255)
    assert psnr(pred, target, "rife").item() == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert psnr(pred, target).item() == pytest.approx(20 * math.log10(255 / 0.6), abs=1e-4)
    # Half the pixels at 2.4/255 (-> 2), half at 0.2/255 (-> 0): MSE = (2/255)^2 / 2.
    pred = torch.full_like(target, 0.2 / 255)
    pred[..., :2, :] = 2.4 / 255
    assert psnr(pred, target, "rife").item() == pytest.approx(10 * math.log10(255**2 / 2), abs=1e-9)
    # Values below 0.5 levels round to the target exactly.
    assert math.isinf(psnr(torch.full_like(target, 0.4 / 255), target, "rife").item())
    # Overshoot is clamped to 1 before rounding, as an image written to disk would be.
    assert quantize(torch.tensor([1.3, -0.2, 0.5])).tolist() == pytest.approx([1.0, 0.0, 128 / 255])


def _ssim_matlab_literal(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """A direct transcription of RIFE's ssim_matlab (one 11x11x11 conv3d, replicate padding, L=1),
    per sample, in float64."""
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None, None] * g[None, :, None] * g[None, None, :]).expand(1, 1, 11, 11, 11)
    a, b = img1.double().unsqueeze(1), img2.double().unsqueeze(1)

    def conv(x):
        return F.conv3d(F.pad(x, (5, 5, 5, 5, 5, 5), mode="replicate"), window)

    mu1, mu2 = conv(a), conv(b)
    s1 = conv(a * a) - mu1**2
    s2 = conv(b * b) - mu2**2
    s12 = conv(a * b) - mu1 * mu2
    c1, c2 = 0.01**2, 0.03**2
    v1, v2 = 2 * s12 + c2, s1 + s2 + c2
    return (((2 * mu1 * mu2 + c1) * v1) / ((mu1**2 + mu2**2 + c1) * v2)).flatten(1).mean(1)


def test_rife_ssim_equals_literal_ssim_matlab(real_frames):
    pred, target = _predictions(real_frames)
    pred, target = pred[::3, :, 40:80, 60:108], target[::3, :, 40:80, 60:108]  # the literal conv3d is slow
    ref = _ssim_matlab_literal(quantize(target.double()), quantize(pred.double()))
    assert torch.allclose(ssim(pred.double(), target.double(), "rife"), ref, atol=1e-7)
    # float32 (the default) agrees to the precision the literature reports (4 decimals).
    assert torch.allclose(ssim(pred, target, "rife"), ref, atol=1e-4)
    # The 3-D window mixes channels: not the same number as the per-channel standard SSIM.
    assert not torch.allclose(ssim(pred, target, "rife"), ssim(quantize(pred), target), atol=1e-3)


def test_errors_name_the_problem():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="protocol='matlab'"):
        psnr(x, x, "matlab")
    with pytest.raises(ValueError, match="differs from target shape"):
        ssim(x, torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match="smaller than the 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
