"""Data loading throughput (samples/s, MB/s) by window, crop, workers and cache state, vs raw decode.

For each crop (the smoke crop and the GPU crop) and window (3, 7, 15; temporal offset 1) the
training loader of the embedded clips is timed with 0, 1 and 2 workers, first with an empty frame
cache (cold: every worker decodes what it needs) and then with the cache filled (warm: memory-mapped
reads). ``samples_per_s`` counts window samples delivered; ``mb_per_s`` is the size of the float32
tensors delivered (inputs + target), the volume the GPU copy must sustain. The raw PyAV decode rate
of the same clips (``fps``) is the reference for the cold figures.

The training step is timed too (forward, loss, backward and
optimiser step on the same crop/window, model settings from a preset) and the consumption rate is
printed next to the warm-cache rate: the goal is warm loading >= 3x what training consumes, so the
data never starves the accelerator. ``--quick`` (used by ``bench all --quick``) keeps one small clip,
the smoke crop, windows 3 and 15, 0 and 2 workers: well under a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lift.bench.common import describe_device, format_table, resolve_device, time_call
from lift.config import DataConfig, load_config
from lift.data import build_dataloader, build_dataset, embedded_clip_paths
from lift.data.decode import decode_video
from lift.model import LIFTLoss, build_model
from lift.window import WindowSpec

SMOKE_CROP = (64, 64)
GPU_CROP = (256, 256)
GOAL = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--quick", action="store_true", help="one small clip, smoke crop, windows 3 and 15, workers 0/2")
    parser.add_argument("--windows", type=int, nargs="+", default=None, help="windows to time (default 3 7 15)")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="DataLoader workers (default 0 1 2)")
    parser.add_argument("--samples", type=int, default=None, help="samples per measurement (default 64; quick 32)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="device of the training-step reference")
    parser.add_argument("--no_train_step", action="store_true", help="skip the training-step reference")
    return parser


def _setups(quick: bool) -> list[dict[str, Any]]:
    """(crop, frame size, clips, preset of the training-step reference) per measured crop."""
    clips = embedded_clip_paths()
    if quick:
        small = [p for p in clips if p.name.startswith("carphone")]
        return [{"crop": SMOKE_CROP, "frame_size": None, "clips": small, "preset": "smoke", "name": "smoke"}]
    return [
        {"crop": (128, 128), "frame_size": (144, 256), "clips": clips, "preset": "smoke", "name": "smoke"},
        {"crop": GPU_CROP, "frame_size": (288, 512), "clips": clips, "preset": "ucf101", "name": "gpu"},
    ]


def _data_cfg(root: Path, cache: Path, crop: tuple[int, int], frame_size: tuple[int, int] | None, window: int,
              samples: int) -> DataConfig:
    return DataConfig(dataset="video_folder", data_root=str(root), window=window, temporal_offset=1, gap=2,
                      crop_size=list(crop), frame_size=list(frame_size) if frame_size else None,
                      train_samples_per_epoch=samples, cache_dir=str(cache), cache_frames=True, pin_memory=False)


def _time_epoch(ds, batch_size: int, workers: int, epoch: int) -> tuple[float, int, int]:
    """(seconds, samples, bytes) to iterate one epoch, worker start-up included."""
    ds.set_epoch(epoch)
    loader = build_dataloader(ds, batch_size=batch_size, num_workers=workers, shuffle=True, drop_last=False)
    start = time.perf_counter()
    n = nbytes = 0
    for batch in loader:
        n += batch["frames"].shape[0]
        nbytes += batch["frames"].numel() * 4 + batch["target"].numel() * 4
    return time.perf_counter() - start, n, nbytes


def _decode_fps(clips: list[Path], frame_size: tuple[int, int] | None) -> tuple[float, int]:
    start = time.perf_counter()
    frames = sum(decode_video(p, frame_size).shape[0] for p in clips)
    return frames / (time.perf_counter() - start), frames


def _train_step(preset: str, window: int, crop: tuple[int, int], device: torch.device,
                batch_size: int) -> tuple[float | None, int, str]:
    """(seconds per optimiser step, batch, note) with the preset's model; None when it fails."""
    cfg = load_config(preset)
    batch = cfg.train.batch_size
    try:
        model = build_model(cfg.model, window).to(device)
        loss_fn = LIFTLoss(cfg.loss).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
        n = WindowSpec(window).num_inputs
        frames = torch.rand(batch, n, 3, *crop, device=device)
        target = torch.rand(batch, 3, *crop, device=device)
        times = torch.tensor([0.0, 1.0] + [0.0] * (n - 2), device=device).expand(batch, n).clone()
        timestep = torch.full((batch,), 0.5, device=device)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            pred, aux = model(frames, times, timestep, target)
            total, _ = loss_fn(pred, aux, target)
            total.backward()
            opt.step()

        return time_call(step, device, warmup=1, repeats=2), batch, f"preset {preset}"
    except Exception as err:  # the reference is optional: report why it is missing, keep the loader figures
        return None, batch, f"training step failed ({type(err).__name__}: {err})"


def _warm_up(tmp: Path, setup: dict[str, Any]) -> None:
    """One untimed batch, so that first-call costs (imports, allocator) do not land on the first figure."""
    root = tmp / "warm-up"
    root.mkdir()
    clip = setup["clips"][-1]
    (root / clip.name).symlink_to(clip)
    ds = build_dataset(_data_cfg(root, tmp / "warm-up-cache", setup["crop"], setup["frame_size"], 3, 4), "all",
                       train=True)
    _time_epoch(ds, 4, 0, 0)
    shutil.rmtree(tmp / "warm-up-cache", ignore_errors=True)


def _time_loaders(tmp: Path, root: Path, setup: dict[str, Any], window: int, workers_list: list[int],
                  samples: int, batch_size: int, cpu: str) -> tuple[list[dict[str, Any]], float]:
    """Cold- and warm-cache loader records of one window for every worker count, and the best warm rate."""
    records: list[dict[str, Any]] = []
    warm_best = 0.0
    for workers in workers_list:
        cache = tmp / f"cache-{setup['name']}-{window}-{workers}"
        cfg = _data_cfg(root, cache, setup["crop"], setup["frame_size"], window, samples)
        ds = build_dataset(cfg, "all", train=True, seed=0)
        for epoch, state in enumerate(("cold", "warm")):
            seconds, n, nbytes = _time_epoch(ds, batch_size, workers, epoch)
            rate = n / seconds
            if state == "warm":
                warm_best = max(warm_best, rate)
            records.append({"bench": "data", "device": cpu, "stage": f"loader-{state}", "window": window,
                            "temporal_offset": 1, "resolution": list(setup["crop"]),
                            "batch": batch_size, "workers": workers, "samples_per_s": rate,
                            "mb_per_s": nbytes / seconds / 1e6})
        shutil.rmtree(cache, ignore_errors=True)
    return records, warm_best


def _consumption(setup: dict[str, Any], window: int, warm_best: float, device: torch.device,
                 batch_size: int) -> tuple[dict[str, Any] | None, str]:
    """The training-step record (None when skipped or failed) and the note comparing it with loading."""
    size = f"{setup['crop'][0]}x{setup['crop'][1]}"
    if device.type == "cpu" and setup["name"] == "gpu":
        return None, (f"window {window} at {size}: training-step reference skipped on CPU (run with a GPU, "
                      "--device cuda)")
    step_s, batch, note = _train_step(setup["preset"], window, setup["crop"], device, batch_size)
    if step_s is None:
        return None, f"window {window}: {note}"
    consume = batch / step_s
    record = {"bench": "data", "device": describe_device(device), "stage": "train-step", "window": window,
              "temporal_offset": 1, "resolution": list(setup["crop"]), "batch": batch, "train_step_s": step_s,
              "samples_per_s": consume}
    verdict = "meets" if warm_best >= GOAL * consume else "BELOW"
    return record, (f"window {window} at {size} ({note}): warm loading {warm_best:.1f} samples/s vs training "
                    f"consumption {consume:.1f} samples/s on {describe_device(device)} = "
                    f"{warm_best / consume:.1f}x ({verdict} the {GOAL:.0f}x goal)")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    quick = bool(getattr(args, "quick", False))
    windows = args.windows or ([3, 15] if quick else [3, 7, 15])
    workers_list = args.workers or ([0, 2] if quick else [0, 1, 2])
    samples = args.samples or (32 if quick else 64)
    cpu = describe_device(torch.device("cpu"))
    device = resolve_device(args.device)
    records: list[dict[str, Any]] = []
    notes: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="lift-bench-data-"))
    try:
        setups = _setups(quick)
        _warm_up(tmp, setups[0])
        for setup in setups:
            root = tmp / f"clips-{setup['name']}"
            root.mkdir()
            for clip in setup["clips"]:
                (root / clip.name).symlink_to(clip)
            fps, nframes = _decode_fps(setup["clips"], setup["frame_size"])
            records.append({"bench": "data", "device": cpu, "stage": "pyav-decode",
                            "resolution": list(setup["frame_size"]) if setup["frame_size"] else "native",
                            "fps": fps, "frames": nframes})
            for window in windows:
                loader_records, warm_best = _time_loaders(tmp, root, setup, window, workers_list, samples,
                                                          args.batch_size, cpu)
                records += loader_records
                if args.no_train_step:
                    continue
                record, note = _consumption(setup, window, warm_best, device, args.batch_size)
                records += [record] if record is not None else []
                notes.append(note)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for line in notes:
        print(line, flush=True)
    return records


if __name__ == "__main__":
    parsed = add_arguments(argparse.ArgumentParser(description=__doc__)).parse_args()
    print(format_table(run(parsed)))
