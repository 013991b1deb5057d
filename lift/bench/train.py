"""Training throughput: samples/s, peak memory and data-wait fraction per window size.

Runs the real training step (`lift.train.Trainer.train_one_epoch`: data loading, forward, loss,
backward, clipping, AdamW) for windows 3, 7 and 15. On CPU at the smoke preset (embedded default
data); on CUDA also at the GPU preset: 256x256 crops, full-width network, batch 16, bf16 autocast,
with frames decoded from the bundled clips at 288x512 so the loader does real work.
"""

from __future__ import annotations

import argparse
import resource
import sys
from typing import Any

import torch

from lift.bench.common import describe_device, peak_memory_mb, reset_peak_memory, resolve_device
from lift.config import Config, load_config
from lift.data.loading import EpochDataset, EpochSampler, make_loader
from lift.rng import seed_everything
from lift.train import Trainer, build_components, build_datasets

WINDOWS = (3, 7, 15)

# GPU preset (configs/ucf101.yaml-like sizes) on the embedded clips, resized so a 256 crop fits.
GPU_PRESET: dict[str, Any] = {
    "data.frame_size": [288, 512],
    "data.crop_size": [256, 256],
    "data.num_workers": 8,
    "model.width": 1.0,
    "model.block_depth": 8,
    "train.batch_size": 16,
    "train.amp": "bf16",
}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="few steps, CPU smoke preset only (< 90 s)")
    parser.add_argument("--windows", default=",".join(map(str, WINDOWS)), help="comma-separated window sizes")
    parser.add_argument("--steps", type=int, default=None, help="timed optimiser steps per window")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps per window")
    parser.add_argument("--batch", type=int, default=None, help="override the preset's batch size")
    parser.add_argument("--workers", type=int, default=None, help="override the preset's DataLoader workers")
    return parser


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux; it is the process peak, so it only grows across windows.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_config(window: int, gpu: bool, args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = dict(GPU_PRESET) if gpu else {"train.amp": "off"}
    overrides.update({"data.window": window, "train.max_steps_per_epoch": None, "optim.warmup_steps": 0,
                      "logging.tensorboard": False, "logging.progress": "off"})
    if args.batch is not None:
        overrides["train.batch_size"] = args.batch
    if args.workers is not None:
        overrides["data.num_workers"] = args.workers
    return load_config("smoke", overrides)


def bench_window(window: int, device: torch.device, gpu: bool, args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    steps = args.steps or (3 if quick else (30 if gpu else 10))
    warmup = args.warmup if args.warmup is not None else (1 if quick else (10 if gpu else 2))
    cfg = bench_config(window, gpu, args)
    seed_everything(0)
    model, loss_fn = build_components(cfg, device)
    ds = build_datasets(cfg, ("train",))["train"]
    sampler = EpochSampler(len(ds), 0)
    loader = make_loader(EpochDataset(ds), cfg, train=True, sampler=sampler, device=device)
    trainer = Trainer(cfg, model, loss_fn, device)
    trainer.set_total_steps(10**6)
    # Warm-up (allocator, cudnn autotuning, worker start) then the timed steps, in one loader pass
    # per call so worker start-up is not charged to the timed steps when workers persist.
    done_warm = 0
    epoch = 0
    while done_warm < warmup:
        sampler.set_epoch(epoch)
        done_warm += trainer.train_one_epoch(loader, epoch, max_steps=warmup - done_warm, progress_mode="off")["steps"]
        epoch += 1
    reset_peak_memory(device)
    totals = {"steps": 0, "samples": 0, "time": 0.0, "data": 0.0}
    while totals["steps"] < steps:
        sampler.set_epoch(epoch)
        st = trainer.train_one_epoch(loader, epoch, max_steps=steps - totals["steps"], progress_mode="off")
        t = st["samples"] / st["samples_per_s"] if st["samples_per_s"] == st["samples_per_s"] else 0.0
        totals["steps"] += st["steps"]
        totals["samples"] += st["samples"]
        totals["time"] += t
        totals["data"] += st["data_wait_fraction"] * t
        epoch += 1
    params = sum(p.numel() for p in model.parameters())
    rec: dict[str, Any] = {
        "bench": "train",
        "device": describe_device(device),
        "preset": "gpu" if gpu else "smoke",
        "window": window,
        "temporal_offset": cfg.data.temporal_offset,
        "resolution": list(cfg.data.crop_size),
        "batch": cfg.train.batch_size,
        "workers": cfg.data.num_workers,
        "amp": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "off",
        "steps": totals["steps"],
        "samples_per_s": totals["samples"] / totals["time"] if totals["time"] else None,
        "train_step_s": totals["time"] / totals["steps"] if totals["steps"] else None,
        "data_wait_fraction": totals["data"] / totals["time"] if totals["time"] else None,
        "peak_mem_mb": peak_memory_mb(device),
        "params": params,
    }
    if device.type == "cpu":
        rec["peak_rss_mb"] = _rss_mb()
    del trainer, model, loader
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rec


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = resolve_device(args.device)
    windows = [int(w) for w in str(args.windows).split(",") if w.strip()]
    records = []
    # The smoke preset is the CPU benchmark; on a GPU it only says how launch-bound tiny nets are.
    presets = [False] if device.type == "cpu" else ([True] if args.quick else [False, True])
    for gpu in presets:
        for window in windows:
            print(f"bench train: window {window} ({'gpu' if gpu else 'smoke'} preset) on {device}",
                  file=sys.stderr, flush=True)
            records.append(bench_window(window, device, gpu, args))
    return records
