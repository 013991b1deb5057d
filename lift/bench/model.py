"""Model cost: parameters and MACs per forward (windows 3, 7, 15) and forward / train-step time.

Parameters and multiply-accumulates are counted at ``--resolution`` and ``--width`` with
``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2) on the meta device, so even the
full-size network at full resolution is counted instantly on a CPU. Timing runs on the chosen
device: on a CPU at the smoke size (``--smoke_width``, ``--smoke_resolution``), on CUDA at
``--resolution`` and ``--width`` under bf16 autocast. A train step here is forward with the
target (teacher included), the loss, and backward; the optimiser update is not included.
Windows are timed round-robin, best of ``--repeats``, figures per sample.

Where the published RIFE HD weights and the official code are present (``make rife-weights``), the
window-3 ``rife_hd`` forward (padding included) is also timed against the official ``IFNet_HDv3``
forward on the same frames at ``--resolution``, round-robin in the same run (target <= 1.05x).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from lift.bench.common import describe_device, peak_memory_mb, reset_peak_memory, resolve_device, synchronize
from lift.config import LossConfig, ModelConfig
from lift.window import WindowSpec
from lift.model import InputPadder, LIFTLoss, build_model, pretrained

WINDOWS = (3, 7, 15)
TRAIN_RATIO_TARGET = 2.5
PUBLISHED_RATIO_TARGET = 1.05


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--quick", action="store_true", help="smallest timing size (< 60 s on a CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (timing only)")
    parser.add_argument("--resolution", type=int, nargs=2, default=[256, 448], metavar=("H", "W"),
                        help="frame size for parameter/MAC counting (and CUDA timing)")
    parser.add_argument("--width", type=float, default=1.0, help="model.width for counting (and CUDA timing)")
    parser.add_argument("--smoke_width", type=float, default=0.25, help="model.width for CPU timing")
    parser.add_argument("--smoke_resolution", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="frame size for CPU timing (default 128 128, 64 64 with --quick)")
    parser.add_argument("--batch", type=int, default=None, help="timing batch (default 2 on CPU, 4 on CUDA)")
    parser.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS))
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per figure, best kept (default 3, 5 without --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser


def _inputs(window: int, batch: int, height: int, width: int, device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    spec = WindowSpec(window=window, temporal_offset=1, gap=2)
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, spec.num_inputs, 3, height, width, generator=gen).to(device)
    times = torch.tensor(spec.input_times(), dtype=torch.float32).expand(batch, -1).contiguous().to(device)
    timestep = torch.full((batch,), spec.timestep(), device=device)
    target = torch.rand(batch, 3, height, width, generator=gen).to(device)
    return frames, times, timestep, target


def count_cost(window: int, model_cfg: ModelConfig, height: int, width: int) -> dict[str, int]:
    """Parameters, reference-path parameters and MACs of one inference forward (batch 1)."""
    with torch.device("meta"):  # no weight initialisation work: only shapes matter here
        model = build_model(model_cfg, window).eval()
    frames, times, timestep, _ = (t.to("meta") for t in _inputs(window, 1, height, width, torch.device("cpu")))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(frames, times, timestep)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "reference_params": sum(p.numel() for p in model.reference_parameters()),
        "macs": int(counter.get_total_flops() // 2),
    }


class _Workload:
    """One window's model and inputs, with a timed inference forward and a timed train step."""

    def __init__(self, window: int, model_cfg: ModelConfig, height: int, width: int, batch: int,
                 device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.model = build_model(model_cfg, window).to(device)
        self.loss_fn = LIFTLoss(LossConfig())
        self.frames, self.times, self.timestep, self.target = _inputs(window, batch, height, width, device)

    def _amp(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self) -> float:
        self.model.eval()
        start = time.perf_counter()
        with torch.no_grad(), self._amp():
            self.model(self.frames, self.times, self.timestep)
        synchronize(self.device)
        return time.perf_counter() - start

    def train_step(self) -> float:
        self.model.train()
        start = time.perf_counter()
        self.model.zero_grad(set_to_none=True)
        with self._amp():
            pred, aux = self.model(self.frames, self.times, self.timestep, self.target)
            total, _ = self.loss_fn(pred, aux, self.target)
        total.backward()
        synchronize(self.device)
        return time.perf_counter() - start


def time_windows(windows: list[int], model_cfg: ModelConfig, height: int, width: int, batch: int,
                 device: torch.device, repeats: int) -> dict[int, dict[str, float | None]]:
    """Per-sample seconds of an inference forward and of a train step (forward+loss+backward).

    The windows are timed round-robin and the best of `repeats` is kept (as timeit does): on a
    shared machine, interference from other processes only ever adds time, and interleaving
    exposes every window to the same load, which keeps the window ratios meaningful.
    """
    loads = {w: _Workload(w, model_cfg, height, width, batch, device) for w in windows}
    for load in loads.values():  # warm-up: allocator, oneDNN/cuDNN kernel selection
        load.forward()
        load.train_step()
    fwd: dict[int, list[float]] = {w: [] for w in windows}
    step: dict[int, list[float]] = {w: [] for w in windows}
    for _ in range(repeats):
        for w, load in loads.items():
            fwd[w].append(load.forward())
        for w, load in loads.items():
            step[w].append(load.train_step())
    out: dict[int, dict[str, float | None]] = {}
    for w, load in loads.items():
        reset_peak_memory(device)
        load.train_step()
        train_s = min(step[w]) / batch
        out[w] = {"forward_s": min(fwd[w]) / batch, "train_step_s": train_s, "samples_per_s": 1.0 / train_s,
                  "peak_mem_mb": peak_memory_mb(device)}
    return out


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = resolve_device(args.device)
    windows = sorted(set(args.windows))
    height, width = args.resolution
    records: list[dict[str, Any]] = []

    cost_cfg = ModelConfig(width=args.width)
    costs = {w: count_cost(w, cost_cfg, height, width) for w in windows}
    for w in windows:
        records.append({"bench": "model", "device": "meta (counted)", "kind": "cost", "window": w,
                        "temporal_offset": 1, "resolution": [height, width], "batch": 1, "width": args.width,
                        **costs[w]})

    if device.type == "cuda":
        t_cfg, (th, tw) = ModelConfig(width=args.width), (height, width)
        batch = args.batch or 4
    else:
        t_cfg = ModelConfig(width=args.smoke_width)
        th, tw = args.smoke_resolution or ([64, 64] if args.quick else [128, 128])
        batch = args.batch or 2
    repeats = args.repeats or (3 if args.quick else 5)
    if args.threads:
        torch.set_num_threads(args.threads)
    times = time_windows(windows, t_cfg, th, tw, batch, device, repeats)
    for w in windows:
        records.append({"bench": "model", "device": describe_device(device), "kind": "time", "window": w,
                        "temporal_offset": 1, "resolution": [th, tw], "batch": batch, "width": t_cfg.width,
                        "amp": "bf16" if device.type == "cuda" else "off", **times[w]})

    lo, hi = windows[0], windows[-1]
    if lo != hi:
        ratio = times[hi]["train_step_s"] / times[lo]["train_step_s"]
        mac_ratio = costs[hi]["macs"] / costs[lo]["macs"]
        verdict = "OK" if ratio <= TRAIN_RATIO_TARGET else "ABOVE TARGET"
        print(f"window {hi} train step / window {lo} train step = {ratio:.2f} (target <= {TRAIN_RATIO_TARGET}) "
              f"[{verdict}; {describe_device(device)}, {th}x{tw}, width {t_cfg.width}]")
        print(f"window {hi} MACs / window {lo} MACs = {mac_ratio:.2f} at {height}x{width}, width {args.width}")
    print(param_check(costs))
    if pretrained.available():
        records.append(time_published(height, width, device, repeats))
    else:
        print(f"rife_hd vs the official code: skipped (no weights in {pretrained.weights_dir()}; make rife-weights)")
    return records


def time_published(height: int, width: int, device: torch.device, repeats: int) -> dict[str, Any]:
    """Seconds of one window-3 ``rife_hd`` forward (LIFT, padded by InputPadder) and of the official
    ``IFNet_HDv3`` forward on the same frames (padded with zeros to 32 as the official inference
    does), round-robin, best of `repeats`; prints the ratio against PUBLISHED_RATIO_TARGET."""
    state = pretrained.load_state_dict("rife_hd")
    ours = build_model(ModelConfig(pretrained="rife_hd"), 3).to(device).eval()
    official = pretrained.official_ifnet()().to(device).eval()
    official.load_state_dict(state)
    frames, times, timestep, _ = _inputs(3, 1, height, width, device)

    def run_ours() -> None:
        padder = InputPadder(frames.shape, ours.size_multiple, ours.pad_mode)
        pred, _ = ours(*padder.pad(frames), times, timestep)
        padder.unpad(pred)

    def run_official() -> None:
        pad = (0, (-width) % 32, 0, (-height) % 32)
        x = torch.cat((torch.nn.functional.pad(frames[:, 0], pad), torch.nn.functional.pad(frames[:, 1], pad)), 1)
        official(x, [4, 2, 1])[2][2][..., :height, :width]

    best = {"ours": float("inf"), "official": float("inf")}
    with torch.no_grad():
        for i in range(repeats + 1):  # the first round warms up
            for name, fn in (("ours", run_ours), ("official", run_official)):
                start = time.perf_counter()
                fn()
                synchronize(device)
                if i:
                    best[name] = min(best[name], time.perf_counter() - start)
    ratio = best["ours"] / best["official"]
    verdict = "OK" if ratio <= PUBLISHED_RATIO_TARGET else "ABOVE TARGET"
    print(f"rife_hd window-3 forward / official IFNet_HDv3 forward = {ratio:.3f} (target <= {PUBLISHED_RATIO_TARGET}) "
          f"[{verdict}; {describe_device(device)}, {height}x{width}, fp32]")
    return {"bench": "model", "device": describe_device(device), "kind": "published", "window": 3,
            "resolution": [height, width], "batch": 1, "forward_s": best["ours"], "official_forward_s": best["official"],
            "ratio": ratio}


def param_check(costs: dict[int, dict[str, int]]) -> str:
    """Whether parameter counts differ between windows by the reference path only."""
    base = [w for w in costs if w == 3]
    refs = [w for w in costs if w > 3]
    problems = []
    if base and costs[base[0]]["reference_params"] != 0:
        problems.append("window 3 has reference parameters")
    ref_counts = {costs[w]["params"] for w in refs}
    if len(ref_counts) > 1:
        problems.append(f"windows {refs} have different parameter counts {sorted(ref_counts)}")
    for w in refs:
        if base and costs[w]["params"] - costs[w]["reference_params"] != costs[base[0]]["params"]:
            problems.append(f"window {w} minus its reference path differs from window 3")
    if problems:
        return "param difference = reference path only: FAILED (" + "; ".join(problems) + ")"
    extra = costs[refs[0]]["reference_params"] if refs else 0
    return f"param difference = reference path only: OK (reference path {extra} parameters)"
