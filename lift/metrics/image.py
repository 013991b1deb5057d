"""PSNR and SSIM per sample, batched on whatever device the frames live on.

Two protocols:

``"standard"``
    Equal to ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=1)`` and
    ``skimage.metrics.structural_similarity(target, pred, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1)`` (the Wang et al. 2004 setting),
    within 1e-4 on real frames.

``"rife"``
    The convention of RIFE's published benchmarks (``benchmark/UCF101.py``), so that numbers are
    comparable with the literature: the prediction is clamped to [0, 1] and rounded to uint8 levels
    (``round(pred * 255) / 255``) before both metrics; PSNR is ``-10 log10(MSE)``; SSIM is RIFE's
    ``ssim_matlab``: the three colour channels are treated as a volume and filtered with an
    11x11x11 Gaussian (sigma 1.5) 3-D window with replicate padding, and the SSIM map is averaged
    over channels and pixels. The target is rounded to uint8 levels too: RIFE reads it from uint8
    files, and our targets are decoded uint8 frames, so this only removes float32 rounding of k/255.

Inputs are ``[B, 3, H, W]`` tensors in [0, 1]; results are float64 ``[B]`` tensors on the input
device. Identical images give ``+inf`` PSNR (kept as such: see ``lift.evaluate.summarize``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F

Protocol = Literal["standard", "rife"]
PROTOCOLS: tuple[str, ...] = ("standard", "rife")

# Wang et al. / skimage: sigma 1.5 truncated at 3.5 sigma -> radius int(3.5 * 1.5 + 0.5) = 5, 11 taps.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
K1, K2 = 0.01, 0.03


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    if pred.dim() != 4:
        raise ValueError(f"{name}: expected [B, C, H, W] tensors, got shape {tuple(pred.shape)}")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: expected one of {', '.join(PROTOCOLS)}")


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 256 uint8 levels, as a frame written to disk would be."""
    return torch.round(img.clamp(0.0, 1.0) * 255.0) / 255.0


def psnr(pred: torch.Tensor, target: torch.Tensor, protocol: Protocol = "standard") -> torch.Tensor:
    """Peak signal-to-noise ratio (dB, data range 1) per sample: float64 ``[B]``; ``+inf`` if equal."""
    _check_pair(pred, target, "psnr")
    _check_protocol(protocol)
    # float64: a 1e-4 dB agreement needs the MSE to 2e-5 relative, more than a float32 sum guarantees
    # (and uint8 levels k/255 are only exact to float32 rounding otherwise).
    pred = pred.detach().to(torch.float64)
    target = target.detach().to(torch.float64)
    if protocol == "rife":
        pred, target = quantize(pred), quantize(target)
    diff = pred - target
    mse = diff.square().flatten(1).mean(dim=1)
    # log10(0) = -inf, so identical images give +inf: the mathematically right answer, kept as is.
    return -10.0 * torch.log10(mse)


@lru_cache(maxsize=16)
def _gaussian_taps(radius: int, sigma: float, dtype: torch.dtype, device_str: str) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=torch.device(device_str))


def _blur_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian over H and W of every channel, 'valid' region only ([B, C, H-10, W-10]).

    skimage filters with mode='reflect' and then crops the 5-pixel border before averaging; the
    cropped values only ever read pixels inside the image, so the valid convolution is the same
    number without any padding convention to match.
    """
    c = x.shape[1]
    k = taps.numel()
    kh = taps.view(1, 1, k, 1).expand(c, 1, k, 1)
    kw = taps.view(1, 1, 1, k).expand(c, 1, 1, k)
    return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)


def _ssim_standard(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    h, w = pred.shape[-2:]
    if min(h, w) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"ssim: images of {h}x{w} are smaller than the 11x11 Gaussian window")
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x = target.to(dtype)
    y = pred.to(dtype)
    taps = _gaussian_taps(SSIM_RADIUS, SSIM_SIGMA, dtype, str(x.device))
    c = x.shape[1]
    # One batched filter call for the five moments instead of five calls.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    mu_x, mu_y, xx, yy, xy = _blur_valid(stack, taps).split(c, dim=1)
    vx = xx - mu_x * mu_x
    vy = yy - mu_y * mu_y
    vxy = xy - mu_x * mu_y
    c1, c2 = K1**2, K2**2  # data range 1
    s = ((2 * mu_x * mu_y + c1) * (2 * vxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (vx + vy + c2))
    # skimage: mean over pixels per channel (float64), then mean over channels.
    return s.to(torch.float64).flatten(2).mean(dim=2).mean(dim=1)


@lru_cache(maxsize=16)
def _depth_mixing(channels: int, device_str: str) -> torch.Tensor:
    """The linear map that ssim_matlab's Gaussian along the channel (depth) axis applies.

    Replicate-padding ``channels`` planes by 5 and filtering with 11 taps mixes the channels with
    fixed weights: row ``o`` holds the weight of each input channel in output channel ``o``. A
    ``[C, C]`` matrix product replaces a depth convolution that costs 13x more on the CPU.
    """
    taps = _gaussian_taps(SSIM_RADIUS, SSIM_SIGMA, torch.float64, "cpu")
    mix = torch.zeros(channels, channels, dtype=torch.float64)
    for o in range(channels):
        for j, w in enumerate(taps.tolist()):
            src = min(max(o + j - SSIM_RADIUS, 0), channels - 1)
            mix[o, src] += w
    return mix.to(dtype=torch.float32, device=torch.device(device_str))


def _ssim_rife(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RIFE's ``ssim_matlab`` (val_range 1 for [0, 1] inputs), per sample instead of batch-averaged.

    ssim_matlab convolves the ``[B, 1, C, H, W]`` volume with an 11x11x11 Gaussian after replicate
    padding every axis by 5. That window is the outer product of three 1-D Gaussians, so it is
    applied here as a channel mixing matrix (the depth axis) and a separable 2-D blur; the tests
    compare with a literal conv3d port.
    """
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x = target.to(dtype)
    y = pred.to(dtype)
    b, c = x.shape[:2]
    taps = _gaussian_taps(SSIM_RADIUS, SSIM_SIGMA, dtype, str(x.device))
    mix = _depth_mixing(c, str(x.device)).to(dtype)
    r = SSIM_RADIUS
    k = taps.numel()
    n = 5 * c
    kh = taps.view(1, 1, k, 1).expand(n, 1, k, 1)
    kw = taps.view(1, 1, 1, k).expand(n, 1, 1, k)

    stack = torch.stack([x, y, x * x, y * y, x * y], dim=1)  # [B, 5, C, H, W]
    stack = torch.einsum("oc,bmchw->bmohw", mix, stack).reshape(b, n, *x.shape[-2:])
    stack = F.pad(stack, (r, r, r, r), mode="replicate")
    moments = F.conv2d(F.conv2d(stack, kh, groups=n), kw, groups=n).view(b, 5, c, *x.shape[-2:])
    mu1, mu2, e11, e22, e12 = moments.unbind(dim=1)
    s1 = e11 - mu1 * mu1
    s2 = e22 - mu2 * mu2
    s12 = e12 - mu1 * mu2
    c1, c2 = K1**2, K2**2  # ssim_matlab: L = 1 for inputs in [0, 1]
    v1 = 2.0 * s12 + c2
    v2 = s1 + s2 + c2
    ssim_map = ((2 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)
    return ssim_map.to(torch.float64).flatten(1).mean(dim=1)


def ssim(pred: torch.Tensor, target: torch.Tensor, protocol: Protocol = "standard") -> torch.Tensor:
    """Structural similarity per sample: float64 ``[B]`` (1 for identical images)."""
    _check_pair(pred, target, "ssim")
    _check_protocol(protocol)
    with torch.no_grad():
        if protocol == "rife":
            return _ssim_rife(quantize(pred), quantize(target))
        return _ssim_standard(pred, target)
