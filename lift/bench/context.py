"""Known-answer far-context benchmark: does window 15 use what only its references show?

Trains window 3 and window 15 from the same seed on the ``known_answer`` dataset (see
``lift/data/known_answer.py``: a background panning 2.5-4.3 px per frame, an occluder present at
the two anchor frames only) at the smoke model size, then evaluates both on held-out sources:
PSNR over the whole frame, inside the hidden region (what neither anchor shows) and outside it,
the references' fusion share inside and outside the hidden region, where both anchors show the
pixel and where both anchor flows are also within ``ANCHOR_RIGHT_PX`` of the exact flow (the
anchors suffice), the anchor flows' end-point error, and the end-point error of the window-15
reference flows against the exact flow, refined and as extrapolated from the anchors, for the
nearest and the farthest reference (over pixels that reference shows, outside and inside the
hidden region).

    python -m lift.bench context [--variant informative|uninformative|both] [--seeds 0,1,2] [--json F]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

from lift.bench.common import describe_device, resolve_device
from lift.config import Config, load_config, parse_override
from lift.metrics.image import psnr
from lift.data.loading import EpochDataset, EpochSampler, make_loader
from lift.rng import seed_everything
from lift.train import Trainer, build_components, build_datasets, forward_batch, to_device

WINDOWS = (3, 15)
VARIANTS = ("informative", "uninformative")
STEPS = 300
QUICK_STEPS = 3
# An anchor flow this close to the exact flow samples the right pixel up to bilinear blur: where
# both are, the anchors suffice and the references have nothing to add.
ANCHOR_RIGHT_PX = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--variant", default="informative", choices=(*VARIANTS, "both"))
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--steps", type=int, default=None, help=f"optimiser steps per window (default {STEPS})")
    parser.add_argument("--size", type=int, default=32, help="frame side in pixels (a multiple of 16)")
    parser.add_argument("--train_sources", type=int, default=256, help="generated training sources")
    parser.add_argument("--test_sources", type=int, default=32, help="held-out generated sources")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps, few sources (a smoke test)")
    # At 32x32 the per-op work is too small to split: on 2 loaded cores one thread took 0.13 CPU-s
    # per window-3 step and two threads 1.3 CPU-s (OpenMP spinning), 3.6x the wall time.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override applied to both windows, e.g. optim.grad_clip=0 (repeatable)")
    return parser


def context_config(window: int, variant: str, seed: int, args: argparse.Namespace) -> Config:
    """The smoke preset's model and optimiser on known-answer data of `variant`."""
    quick = args.quick
    overrides: dict[str, Any] = {
        "data.dataset": "known_answer", "data.known_answer_variant": variant, "data.window": window,
        "data.temporal_offset": 1, "data.gap": 2, "data.eval_max_window": 15, "data.eval_max_offset": 1,
        "data.frame_size": None, "data.crop_size": [args.size, args.size], "data.color_jitter": 0.0,
        "data.max_sequences": 4 if quick else None, "data.train_samples_per_epoch": 8 if quick else args.train_sources,
        "data.num_workers": 0,
        "train.seed": seed, "train.amp": "off", "train.batch_size": 8, "train.eval_batch_size": 16,
        "train.max_steps_per_epoch": None, "logging.tensorboard": False, "logging.progress": "off",
    }
    overrides.update(parse_override(text) for text in args.set)
    return load_config("smoke", overrides)


def train_window(cfg: Config, device: torch.device, steps: int, train_sources: int) -> tuple[Trainer, float]:
    """Train `steps` optimiser steps; returns the trainer and the training wall time (s)."""
    seed_everything(cfg.train.seed)
    model, loss_fn = build_components(cfg, device)
    data_cfg = cfg.data
    saved = data_cfg.max_sequences
    data_cfg.max_sequences = saved or train_sources
    ds = build_datasets(cfg, ("train",))["train"]
    data_cfg.max_sequences = saved
    sampler = EpochSampler(len(ds), cfg.train.seed)
    loader = make_loader(EpochDataset(ds), cfg, train=True, sampler=sampler, device=device)
    trainer = Trainer(cfg, model, loss_fn, device)
    trainer.set_total_steps(steps)
    start = time.perf_counter()
    done, epoch = 0, 0
    while done < steps:
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)
        done += trainer.train_one_epoch(loader, epoch, max_steps=steps - done, progress_mode="off")["steps"]
        epoch += 1
    return trainer, time.perf_counter() - start


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(sum of values * mask, sum of mask), for pooling over batches."""
    return float((values * mask).sum()), float(mask.sum())


@torch.no_grad()
def evaluate_window(trainer: Trainer, cfg: Config, device: torch.device, test_sources: int) -> dict[str, Any]:
    """Held-out PSNR (whole frame, hidden region), fusion shares and reference-flow EPE."""
    cfg.data.max_sequences = cfg.data.max_sequences or test_sources
    ds = build_datasets(cfg, ("test",))["test"]
    loader = make_loader(ds, cfg, train=False, device=device)
    model = trainer.model.eval()
    sums: dict[str, list[float]] = {}

    def add(key: str, pair: tuple[float, float]) -> None:
        acc = sums.setdefault(key, [0.0, 0.0])
        acc[0] += pair[0]
        acc[1] += pair[1]

    psnrs: list[float] = []
    for group in loader:
        for batch in group:
            batch = to_device(batch, device)
            pred, aux = forward_batch(model, batch, trainer.size_multiple, with_target=False,
                                      pad_mode=trainer.pad_mode)
            target = batch["target"]
            hidden = batch["hidden"][:, 0]  # [B, 1, H, W]
            psnrs += psnr(pred, target).tolist()
            sq = (pred.double() - target.double()).square().mean(1, keepdim=True)
            add("mse_hidden", _masked_mean(sq, hidden))
            add("mse_outside", _masked_mean(sq, 1 - hidden))
            weights = aux["fusion_weights"]
            share = weights[:, 2:].sum(1) if weights.shape[1] > 2 else torch.zeros_like(hidden)
            add("share_hidden", _masked_mean(share, hidden))
            add("share_outside", _masked_mean(share, 1 - hidden))
            # Where both anchors show the target pixel: the anchors alone could suffice there.
            both = batch["valid"][:, 0] * batch["valid"][:, 1]
            add("share_both_anchors", _masked_mean(share, both))
            anchor_epe = (aux["flows"][:, :2] - batch["flow_gt"][:, :2]).norm(dim=2)  # [B, 2, H, W]
            right = both * (1 - hidden) * (anchor_epe.amax(1, keepdim=True) < ANCHOR_RIGHT_PX)
            add("share_anchors_right", _masked_mean(share, right))
            add("anchors_right_fraction", (float(right.sum()), float(right.numel())))
            # How far the anchor flows are from right where the anchors show the target pixel.
            add("anchor_epe", _masked_mean(anchor_epe.unsqueeze(2), batch["valid"][:, :2] * (1 - hidden[:, None])))
            if "reference_init_flows" in aux:
                _add_epe(add, aux, batch, hidden)
    out: dict[str, Any] = {"psnr": sum(psnrs) / len(psnrs), "samples": len(psnrs)}
    for region in ("hidden", "outside"):
        num, den = sums[f"mse_{region}"]
        out[f"psnr_{region}"] = float(-10.0 * torch.log10(torch.tensor(num / max(den, 1.0))))
    for key, (num, den) in sums.items():
        if not key.startswith("mse_"):
            out[key] = num / den if den else None  # None: no such pixel (e.g. no anchor flow right yet)
    return out


def _add_epe(add: Any, aux: dict[str, Any], batch: dict[str, Any], hidden: torch.Tensor) -> None:
    """EPE of the nearest and the farthest reference's flow (refined, and extrapolated from the
    anchors) against the exact flow, where the reference shows the target pixel: outside the
    hidden region (``epe_<ref>_<kind>``, where the anchors show the pixel) and inside it
    (``epe_<ref>_<kind>_hidden``, where the anchors show the occluder and only the references help)."""
    times, timestep = batch["times"][:, 2:], batch["timestep"]
    distance = (times - timestep[:, None]).abs()
    gt, valid = batch["flow_gt"][:, 2:], batch["valid"][:, 2:]
    rows = torch.arange(times.shape[0], device=times.device)
    for name, index in (("nearest", distance.argmin(1)), ("farthest", distance.argmax(1))):
        for region, inside in (("", 1 - hidden), ("_hidden", hidden)):
            mask = valid[rows, index] * inside
            for kind, flows in (("refined", aux["flows"][:, 2:]), ("extrapolated", aux["reference_init_flows"])):
                err = (flows[rows, index] - gt[rows, index]).norm(dim=1, keepdim=True)
                add(f"epe_{name}_{kind}{region}", _masked_mean(err, mask))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = resolve_device(args.device)
    threads = torch.get_num_threads()
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    variants = VARIANTS if args.variant == "both" else (args.variant,)
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    records: list[dict[str, Any]] = []
    for variant in variants:
        for seed in seeds:
            results: dict[int, dict[str, Any]] = {}
            for window in WINDOWS:
                print(f"bench context: {variant}, seed {seed}, window {window}, {steps} steps on {device}",
                      file=sys.stderr, flush=True)
                cfg = context_config(window, variant, seed, args)
                trainer, wall = train_window(cfg, device, steps, args.train_sources)
                res = evaluate_window(trainer, cfg, device, args.test_sources)
                res["train_s"] = wall
                results[window] = res
            records.append(_record(variant, seed, steps, args, device, results))
    if len(seeds) > 1:
        records += summarize(records)
    return records


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant over seeds: mean, sample standard deviation, min and max of the gain (dB), and
    the mean fusion shares and the number of seeds where window 15 beat window 3 by 2 dB."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in records if r.get("bench") == "context"):
        rows = [r for r in records if r.get("bench") == "context" and r["variant"] == variant]
        gains = torch.tensor([float(r["gain_db"]) for r in rows], dtype=torch.float64)
        out.append({
            "bench": "context-summary", "variant": variant, "seeds": len(rows),
            "gain_db_mean": float(gains.mean()), "gain_db_sd": float(gains.std()) if len(rows) > 1 else None,
            "gain_db_min": float(gains.min()), "gain_db_max": float(gains.max()),
            "seeds_gain_ge_2db": int((gains >= 2.0).sum()),
            **{f"{key}_mean": _mean_of_known(r[key] for r in rows)
               for key in ("share_hidden", "share_outside", "share_both_anchors", "share_anchors_right")},
        })
    return out


def _mean_of_known(values: Any) -> float | None:
    """The mean of the values that are not None (a seed without such pixels has none); None if none is."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _record(variant: str, seed: int, steps: int, args: argparse.Namespace, device: torch.device,
            results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    w3, w15 = results[3], results[15]
    rec: dict[str, Any] = {
        "bench": "context", "device": describe_device(device), "variant": variant, "seed": seed,
        "steps": steps, "size": args.size, "test_samples": w15["samples"],
        "psnr_w3": w3["psnr"], "psnr_w15": w15["psnr"], "gain_db": w15["psnr"] - w3["psnr"],
        "psnr_hidden_w3": w3["psnr_hidden"], "psnr_hidden_w15": w15["psnr_hidden"],
        "psnr_outside_w3": w3["psnr_outside"], "psnr_outside_w15": w15["psnr_outside"],
        "share_hidden": w15["share_hidden"], "share_outside": w15["share_outside"],
        "share_both_anchors": w15["share_both_anchors"], "share_anchors_right": w15["share_anchors_right"],
        "anchors_right_fraction_w3": w3["anchors_right_fraction"],
        "anchors_right_fraction_w15": w15["anchors_right_fraction"],
        "anchor_epe_w3": w3["anchor_epe"], "anchor_epe_w15": w15["anchor_epe"],
    }
    for key in sorted(k for k in w15 if k.startswith("epe_")):
        rec[key] = w15[key]
    rec.update(train_s_w3=w3["train_s"], train_s_w15=w15["train_s"])
    return rec
