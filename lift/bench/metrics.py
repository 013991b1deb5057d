"""Metric throughput: samples/s of PSNR, SSIM, SSIM (RIFE protocol), LPIPS, EPE and TV-L1.

At ``--resolution`` (default 256x256) on the CPU and, when available, on CUDA. The inputs are
real footage (two consecutive frames of the embedded ``bikes`` clip, cropped and tiled to the
batch), because TV-L1's run time depends on the content. TV-L1 (scikit-image) runs on the CPU
only; it is the metric that could dominate evaluation time, so flow agreement is opt-in
(``python -m lift.evaluate --reference_flow``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import torch

from lift.bench.common import describe_device, peak_memory_mb, reset_peak_memory, resolve_device, time_call
from lift.data.video_folder import embedded_clip_paths
from lift.metrics.flow import epe_stats, tvl1_flow
from lift.metrics.image import psnr, ssim
from lift.metrics.lpips import LPIPSUnavailableError, load_lpips, lpips_distance

CLIP = "bikes.mp4"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--quick", action="store_true", help="small batches, one timed repeat (< 60 s on a CPU)")
    parser.add_argument("--device", default="auto",
                        help="auto (the CPU, and CUDA when available), cpu, or cuda[:N] (CUDA only)")
    parser.add_argument("--resolution", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=None, help="samples per call (default 8 on CPU, 32 on CUDA)")
    parser.add_argument("--tvl1_pairs", type=int, default=None, help="pairs timed for TV-L1 (default 2, 1 with --quick)")
    return parser


def _real_pair(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two consecutive real frames [3, H, W] in [0, 1], center-cropped (tiled if the clip is smaller)."""
    path = next(p for p in embedded_clip_paths() if p.name == CLIP)
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= 10:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 2:
                break
    arr = np.stack(frames)
    reps = (1, -(-height // arr.shape[1]), -(-width // arr.shape[2]), 1)
    arr = np.tile(arr, reps)
    y0 = (arr.shape[1] - height) // 2
    x0 = (arr.shape[2] - width) // 2
    arr = arr[:, y0:y0 + height, x0:x0 + width]
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0
    return t[0], t[1]


def _devices(name: str) -> list[torch.device]:
    if name == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [resolve_device(name)]


def _record(metric: str, device: torch.device, resolution: list[int], batch: int, seconds: float | None,
            note: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"bench": "metrics", "device": describe_device(device), "metric": metric,
                           "resolution": resolution, "batch": batch,
                           "samples_per_s": (batch / seconds) if seconds else None,
                           "peak_mem_mb": peak_memory_mb(device)}
    if note:
        rec["note"] = note
    return rec


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    height, width = args.resolution
    resolution = [height, width]
    repeats = 1 if args.quick else 3
    first, second = _real_pair(height, width)
    records: list[dict[str, Any]] = []
    for device in _devices(args.device):
        batch = args.batch or ((2 if args.quick else 8) if device.type == "cpu" else 32)
        target = first.to(device).expand(batch, -1, -1, -1).contiguous()
        pred = (0.5 * (first + second)).to(device).expand(batch, -1, -1, -1).contiguous()
        flow_gt = torch.randn(batch, 2, height, width, generator=torch.Generator().manual_seed(0)).to(device)
        flow = flow_gt + 0.5

        cases: list[tuple[str, Callable[[], Any] | None, str | None]] = [
            ("psnr", lambda: psnr(pred, target), None),
            ("ssim", lambda: ssim(pred, target), None),
            ("ssim_rife", lambda: ssim(pred, target, "rife"), None),
        ]
        try:
            model = load_lpips(device=device)

            def lpips_call() -> torch.Tensor:
                with torch.no_grad():
                    return lpips_distance(model, pred, target)

            cases.append(("lpips", lpips_call, None))
        except LPIPSUnavailableError as err:
            cases.append(("lpips", None, str(err).splitlines()[0]))
        cases.append(("epe", lambda: epe_stats(flow, flow_gt), None))

        for metric, fn, note in cases:
            reset_peak_memory(device)
            seconds = time_call(fn, device, warmup=1, repeats=repeats) if fn is not None else None
            records.append(_record(metric, device, resolution, batch, seconds, note))

    # TV-L1 is scikit-image on the CPU whatever the evaluation device.
    pairs = args.tvl1_pairs or (1 if args.quick else 2)
    cpu = torch.device("cpu")
    t1 = first.expand(pairs, -1, -1, -1).contiguous()
    t2 = second.expand(pairs, -1, -1, -1).contiguous()
    seconds = time_call(lambda: tvl1_flow(t1, t2), cpu, warmup=0, repeats=1)
    records.append(_record("tvl1", cpu, resolution, pairs, seconds))
    return records
