"""TensorBoard event files for a run: scalars, image panels and the run's hyperparameters.

A thin layer over ``torch.utils.tensorboard.SummaryWriter`` that knows the run's tag names, so that
runs of a study line up in TensorBoard, and that can be switched off (``logging.tensorboard: false``)
without every call site checking.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from lift.logging.meter import Meter
from lift.logging.visualization import training_images

# Hyperparameters shown in the HParams dashboard: the ablated parameters and the recipe knobs a
# study tunes. The full resolved config sits beside the events in config.yaml.
HPARAM_KEYS = (
    "name", "data.dataset", "data.window", "data.temporal_offset", "data.gap", "data.crop_size",
    "model.name", "model.width", "model.block_depth", "model.refine",
    "loss.reconstruction", "loss.teacher", "loss.distillation", "loss.lpips", "loss.census", "loss.smoothness",
    "optim.lr", "optim.min_lr", "optim.weight_decay", "optim.warmup_steps", "optim.accum_steps",
    "optim.grad_clip", "train.batch_size", "train.epochs", "train.amp", "train.seed",
)


def flatten_config(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def hparam_values(config_dict: dict[str, Any], keys: tuple[str, ...] = HPARAM_KEYS) -> dict[str, Any]:
    """Config values the HParams plugin accepts (bool, str, int, float): lists and None become text."""
    flat = flatten_config(config_dict)
    out: dict[str, Any] = {}
    for key in keys:
        if key not in flat:
            continue
        value = flat[key]
        if value is None or isinstance(value, (list, tuple)):
            value = "x".join(map(str, value)) if isinstance(value, (list, tuple)) else "none"
        out[key] = value
    return out


class TensorBoardLogger:
    """Writes real event files into `log_dir`; every method is a no-op when `enabled` is False.

    `purge_step`: on resume, events at or after this step left by the interrupted process are
    discarded by TensorBoard so curves do not fold back on themselves.
    """

    def __init__(self, log_dir: str | Path, enabled: bool = True, purge_step: int | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self.writer: SummaryWriter | None = None
        if enabled:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def scalar(self, tag: str, value: float | Tensor | None, step: int) -> None:
        if self.writer is None or value is None:
            return
        value = float(value.detach()) if isinstance(value, Tensor) else float(value)
        if math.isnan(value):
            # A NaN metric (e.g. LPIPS switched off) would draw nothing useful and breaks smoothing.
            return
        self.writer.add_scalar(tag, value, step)

    def scalars(self, values: dict[str, float | Tensor | None], step: int, prefix: str = "") -> None:
        for key, value in values.items():
            self.scalar(f"{prefix}{key}", value, step)

    def gpu_memory(self, device: torch.device, step: int) -> None:
        if self.writer is None or device.type != "cuda":
            return
        self.scalar("gpu/mem_alloc_mb", torch.cuda.memory_allocated(device) / 2**20, step)
        self.scalar("gpu/mem_peak_mb", torch.cuda.max_memory_allocated(device) / 2**20, step)

    def train_window(self, m: Meter, step: int, lr: float, skipped_steps: int, device: torch.device) -> None:
        """The training figures since the last point: loss and components (`comp/<name>`, averaged
        over the finite losses), lr, time per step, data wait, throughput, gradient norm."""
        losses = m.count("loss")
        if losses:
            self.scalar("train/loss", m.mean("loss"), step)
            for k in m.names("comp/"):
                self.scalar(f"train/{k.removeprefix('comp/')}", m.total(k) / losses, step)
        self.scalar("lr", lr, step)
        if m.count("time"):
            self.scalar("time/batch", m.mean("time"), step)
            self.scalar("time/data", m.mean("data"), step)
        if m.total("time") > 0:
            self.scalar("samples_per_s", m.ratio("samples", "time"), step)
            self.scalar("time/data_wait_fraction", m.ratio("data", "time"), step)
        if m.count("grad_norm"):
            self.scalar("grad_norm", m.mean("grad_norm"), step)
        self.scalar("skipped_steps", skipped_steps, step)
        self.gpu_memory(device, step)

    def image(self, tag: str, img: Tensor, step: int) -> None:
        if self.writer is None:
            return
        self.writer.add_image(tag, img.clamp(0, 1), step, dataformats="CHW")

    def images(self, batch: dict[str, Tensor], pred: Tensor, aux: dict, step: int, num: int = 2,
               prefix: str = "images/") -> list[str]:
        """Log every panel of visualization.training_images; returns the tags written."""
        if self.writer is None or num <= 0:
            return []
        tags = []
        for name, img in training_images(batch, pred, aux, num).items():
            self.image(f"{prefix}{name}", img, step)
            tags.append(f"{prefix}{name}")
        return tags

    def hparams(self, config_dict: dict[str, Any], metrics: dict[str, float], step: int) -> None:
        """Record the run's hyperparameters with its final metrics in this run's own folder.

        SummaryWriter.add_hparams would put them in a timestamped sub-run; writing the three
        HParams summaries here keeps one run per training, so the HParams table links to the same
        curves as the scalar dashboards.
        """
        if self.writer is None:
            return
        metric_values = {f"hparam/{k}": float(v) for k, v in metrics.items()
                         if v is not None and not math.isnan(float(v))}
        exp, ssi, sei = hparams_summary(hparam_values(config_dict), metric_values)
        fw = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            fw.add_summary(summary, step)
        for tag, value in metric_values.items():
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
