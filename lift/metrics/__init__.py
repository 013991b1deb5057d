"""Image and flow quality metrics.

- ``lift.metrics.image``: ``psnr``, ``ssim`` (``protocol="standard"`` = skimage, ``"rife"`` = RIFE's benchmarks);
- ``lift.metrics.lpips``: ``load_lpips``, ``lpips_distance``, ``LPIPSUnavailableError`` (real AlexNet weights only);
- ``lift.metrics.flow``: EPE statistics, photometric warp error, TV-L1 reference flow (imported on its
  own: it depends on ``lift.model.warp``, and the model package uses LPIPS from here).
"""

from lift.metrics.image import psnr, quantize, ssim
from lift.metrics.lpips import LPIPSUnavailableError, load_lpips, lpips_distance

__all__ = ["LPIPSUnavailableError", "load_lpips", "lpips_distance", "psnr", "quantize", "ssim"]
