"""Training: `fit(config, reporter, resume_from)` and the `Trainer` it drives.

The loop is plain Python (no Ray inside): Ray Tune wraps `fit` with a reporter that forwards the
metrics and checkpoint folder to `ray.tune.report`; the CLI (`python -m lift.train`, in
lift/train/__main__.py) uses a console reporter. The run folder (`config.paths.run_dir`) holds
`config.yaml`, the TensorBoard events, `checkpoints/{best,last}.pt` (plus periodic
`epoch_NNNN.pt` snapshots, lift.checkpoint) and the final per-sample table `samples.parquet`.

Reproducibility: every epoch starts from RNG states derived from (seed, epoch) (lift.rng) and
draws its data order from an epoch-seeded sampler (lift.data.loading), and the learning rate is a
pure function of the step (lift.optim.get_lr), so an interrupted run resumed from `last.pt`
continues with the same step count, learning rate and (on CPU) metrics as one never interrupted.
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lift import devices
from lift.arms import OFFSET_KEY, WINDOW_KEY, arm_key
from lift.atomic import remove_stale_temporaries_in
from lift.checkpoint import CHECKPOINT_FORMAT, atomic_copy, load_checkpoint, save_checkpoint
from lift.config import Config, ConfigError, config_from_dict, dict_differences, save_config
from lift.data import build_dataset
from lift.data.loading import EpochDataset, EpochSampler, make_loader
from lift.data.registry import DATASETS
from lift.evaluate import evaluate_model, summarize, write_samples_table
from lift.logging import Meter, Progress, TensorBoardLogger
from lift.model import InputPadder, LIFTLoss, build_model, model_args
from lift.model.diagnostics import reference_diagnostics, reference_share_image
from lift.model.registry import MODELS
from lift.optim import Updater
from lift.registry import RegistryError
from lift.rng import capture_rng_state, mix_seed, restore_rng_state, seed_everything

log = logging.getLogger("lift.train")

Reporter = Callable[[dict[str, Any], "Path | None"], None]

# Validation loss and image panels come from a few fixed validation batches: the metrics come
# from lift.evaluate over the whole split, the loss only tracks over/under-fitting.
VAL_LOSS_BATCHES = 8


@dataclass
class FitResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    samples_path: Path | None
    epochs_completed: int
    step: int
    best_val_psnr: float | None
    best_epoch: int | None
    final_metrics: dict[str, float]
    skipped_steps: int
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """train.device -> torch.device (errors name train.device)."""
    return devices.resolve_device(name, "train.device")


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------

def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: (v.to(device, non_blocking=nb) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def forward_batch(net: nn.Module, batch: dict[str, Tensor], multiple: int = 1,
                  with_target: bool = True, pad_mode: str = "replicate") -> tuple[Tensor, dict[str, Any]]:
    """Run the model on a batch, padding frames (and target) to the model's size multiple (in its
    pad_mode) and cropping the prediction and the image outputs of aux back."""
    frames, target = batch["frames"], batch["target"]
    padder = InputPadder(frames.shape, multiple, pad_mode)
    if not padder.needed:
        return net(frames, batch["times"], batch["timestep"], target=target if with_target else None)
    frames, target = padder.pad(frames, target)
    pred, aux = net(frames, batch["times"], batch["timestep"], target=target if with_target else None)
    return padder.unpad(pred), padder.unpad_outputs(aux)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------

class Trainer:
    """Model, loss, the optimiser step (lift.optim.Updater) and the counters of one run; `fit` drives it."""

    def __init__(self, cfg: Config, model: nn.Module, loss_fn: nn.Module, device: torch.device,
                 tb: TensorBoardLogger | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.model = model.to(device)
        self.net: nn.Module = torch.compile(self.model) if cfg.train.compile else self.model
        self.loss_fn = loss_fn.to(device)
        self.amp_dtype = devices.autocast_dtype(cfg.train.amp, device, "training")
        self.eval_amp_dtype = devices.autocast_dtype(cfg.train.amp, device, "evaluation")
        self.size_multiple = int(getattr(model, "size_multiple", 1) or 1)
        self.pad_mode = str(getattr(model, "pad_mode", "replicate"))
        self.tb = tb or TensorBoardLogger("", enabled=False)
        self.updater = Updater(cfg, self.model, self.amp_dtype == torch.float16, device, self.tb)
        self.epoch = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.best_means: dict[str, float] = {}

    @property
    def step(self) -> int:
        return self.updater.step

    @property
    def skipped_steps(self) -> int:
        return self.updater.skipped_steps

    @property
    def lr(self) -> float:
        return self.updater.lr

    def set_total_steps(self, total_steps: int) -> None:
        self.updater.set_total_steps(total_steps)

    def steps_per_epoch(self, loader: DataLoader) -> int:
        steps = math.ceil(len(loader) / self.cfg.optim.accum_steps)
        cap = self.cfg.train.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    # -- an epoch ------------------------------------------------------------------------------
    def _micro_step(self, batch: dict[str, Any], meters: tuple[Meter, ...]) -> tuple[float, dict[str, Any]]:
        """Forward and backward of one micro-batch (a non-finite loss is not backpropagated);
        adds the loss, its components and the samples to `meters`. Returns the loss and aux."""
        with devices.autocast(self.device, self.amp_dtype):
            pred, aux = forward_batch(self.net, batch, self.size_multiple, pad_mode=self.pad_mode)
            loss, comps = self.loss_fn(pred.float(), aux, batch["target"])
        loss_value = float(loss.detach())
        figures = {"samples": int(batch["target"].shape[0])}
        if math.isfinite(loss_value):
            self.updater.backward(loss)
            figures["loss"] = loss_value
            figures.update({f"comp/{k}": float(v.detach()) if isinstance(v, Tensor) else float(v)
                            for k, v in comps.items()})
        for meter in meters:
            meter.update(**figures)
        return loss_value, aux

    def train_one_epoch(self, loader: DataLoader, epoch: int, max_steps: int | None = None,
                        progress_mode: str | None = None) -> dict[str, float]:
        """Train over `loader` (at most `max_steps` optimiser steps, default the config's cap).

        Returns epoch statistics: train_loss (mean of the finite losses), loss components,
        steps, skipped, samples, samples_per_s, data_wait_fraction, time_s.
        """
        cfg, accum = self.cfg, self.cfg.optim.accum_steps
        steps_target = (self.steps_per_epoch(loader) if max_steps is None
                        else min(max_steps, math.ceil(len(loader) / accum)))
        total_micro = min(len(loader), steps_target * accum)
        self.model.train()
        self.updater.optimizer.zero_grad(set_to_none=True)
        # The epoch's figures, and the window since the last TensorBoard point.
        epoch_m, window_m = Meter(), Meter()
        group, nonfinite, micro, updates = 0, None, 0, 0
        start = t_last = group_start = time.perf_counter()
        group_data = 0.0
        with Progress(steps_target, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
                      mode=progress_mode or cfg.logging.progress, interval_s=cfg.logging.progress_interval_s,
                      unit="step") as bar:
            for batch in loader:
                group_data += time.perf_counter() - t_last
                batch = to_device(batch, self.device)
                loss_value, aux = self._micro_step(batch, (epoch_m, window_m))
                micro, group = micro + 1, group + 1
                if not math.isfinite(loss_value) and nonfinite is None:
                    nonfinite = f"loss is {loss_value}"
                if group == accum or micro == total_micro:
                    grad_norm = self.updater.update(group, nonfinite, epoch)
                    updates += 1
                    group_start = self._end_group(group_start, group_data, grad_norm, (epoch_m, window_m))
                    group, nonfinite, group_data = 0, None, 0.0
                    if grad_norm is not None and (self.step % cfg.logging.log_every == 0 or self.step == 1):
                        self.tb.train_window(window_m, self.step, self.lr, self.skipped_steps, self.device)
                        self._log_reference_diagnostics(aux, batch)
                        window_m.reset()
                    bar.update(1, loss=loss_value, lr=self.lr)
                    if updates >= steps_target:
                        break
                t_last = time.perf_counter()
        return self._epoch_stats(epoch_m, updates, time.perf_counter() - start)

    def _end_group(self, group_start: float, group_data: float, grad_norm: float | None,
                   meters: tuple[Meter, ...]) -> float:
        """Timing (and gradient norm) of the optimiser step that ends a group; returns its end time."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t_end = time.perf_counter()
        for meter in meters:
            meter.update(time=t_end - group_start, data=group_data)
            if grad_norm is not None:
                meter.update(grad_norm=grad_norm)
        return t_end

    @staticmethod
    def _epoch_stats(m: Meter, updates: int, elapsed: float) -> dict[str, float]:
        losses = m.count("loss")
        out = {
            "train_loss": m.mean("loss"),
            "steps": updates,
            "samples": int(m.total("samples")),
            "samples_per_s": m.ratio("samples", "time"),
            "data_wait_fraction": m.ratio("data", "time"),
            "time_s": elapsed,
        }
        # Components are averaged over the finite losses, as the loss is.
        out.update({f"train_{k.removeprefix('comp/')}": m.total(k) / losses for k in m.names("comp/")}
                   if losses else {})
        return out

    def _log_reference_diagnostics(self, aux: dict[str, Any], batch: dict[str, Any]) -> None:
        """Reference-path scalars (fusion shares, flow size and error) and the share map of the
        last batch; nothing for window 3 or without TensorBoard."""
        if not self.tb.enabled:
            return
        self.tb.scalars(reference_diagnostics(aux, batch), self.step, prefix="reference/")
        if self.cfg.logging.image_every > 0:
            image = reference_share_image(aux)
            if image is not None:
                self.tb.image("reference/share", image, self.step)

    # -- evaluation hooks ----------------------------------------------------------------------
    def evaluate(self, loader: DataLoader, *, split: str, arm: str, trial_id: str,
                 max_batches: int | None = None, frames_dir: Path | None = None) -> tuple[dict[str, float], Any]:
        """Per-sample table from lift.evaluate.evaluate_model and its means (psnr, ssim, lpips)."""
        self.model.eval()
        df = evaluate_model(self.model, loader, device=self.device, eval_cfg=self.cfg.eval, arm=arm, split=split,
                            seed=self.cfg.train.seed, trial_id=trial_id, amp_dtype=self.eval_amp_dtype,
                            max_batches=max_batches, frames_dir=frames_dir)
        self.model.train()
        # Same convention as lift.evaluate.summarize: an exact frame's infinite PSNR is not averaged.
        summary = summarize(df).set_index("metric")
        means = {name: float(summary.loc[name, "mean"]) if name in summary.index else float("nan")
                 for name in ("psnr", "ssim", "lpips")}
        means["num_samples"] = float(len(df))
        return means, df

    @torch.no_grad()
    def validation_loss(self, loader: DataLoader, max_batches: int = VAL_LOSS_BATCHES,
                        images_step: int | None = None) -> float:
        """Training loss on the first `max_batches` validation batches (teacher included);
        logs the image panels of the first batch when `images_step` is given."""
        self.model.eval()
        losses = Meter()
        try:
            for i, item in enumerate(loader):
                if i >= max_batches:
                    break
                for j, batch in enumerate(item if isinstance(item, (list, tuple)) else [item]):
                    batch = to_device(batch, self.device)
                    with devices.autocast(self.device, self.amp_dtype):
                        pred, aux = forward_batch(self.net, batch, self.size_multiple, pad_mode=self.pad_mode)
                        loss, _ = self.loss_fn(pred.float(), aux, batch["target"])
                    if math.isfinite(float(loss)):
                        losses.update(loss=float(loss))
                    if i == 0 and j == 0 and images_step is not None:
                        self.tb.images(batch, pred.float(), aux, images_step, self.cfg.logging.num_images)
        finally:
            self.model.train()
        return losses.mean("loss")

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), **self.updater.state_dict(), "epoch": self.epoch,
                "best_metric": self.best_metric, "best_epoch": self.best_epoch, "best_means": dict(self.best_means)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updater.load_state_dict(state)
        self.epoch = int(state["epoch"])
        self.best_metric = state.get("best_metric")
        self.best_epoch = state.get("best_epoch")
        self.best_means = dict(state.get("best_means") or {})


# ---------------------------------------------------------------------------------------------
# Building a run
# ---------------------------------------------------------------------------------------------

def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{stamp}-{name}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{stamp}-{name}-{n}"
    return path


def check_registries(cfg: Config) -> None:
    """Dataset and model names exist (a ConfigError naming the field and the known names otherwise)."""
    try:
        DATASETS.get(cfg.data.dataset, "data.dataset")
        MODELS.get(cfg.model.name, "model.name")
    except RegistryError as err:
        raise ConfigError(str(err)) from None


def build_components(cfg: Config, device: torch.device) -> tuple[nn.Module, nn.Module]:
    model = build_model(cfg.model, cfg.data.window)
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    h, w = cfg.data.crop_size
    if h % multiple or w % multiple:
        raise ConfigError(f"data.crop_size: got {cfg.data.crop_size!r}; the model needs height and width that are "
                          f"multiples of {multiple}")
    return model, LIFTLoss(cfg.loss, lpips_weights=cfg.eval.lpips_weights)


def build_datasets(cfg: Config, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Dataset]:
    out = {}
    for split in splits:
        ds = build_dataset(cfg.data, split, train=split == "train", seed=cfg.train.seed)
        if len(ds) == 0:
            raise ConfigError(f"data: the {split} split of dataset {cfg.data.dataset!r} "
                              f"(data_root {cfg.data.data_root!r}) has no samples for window {cfg.data.window}, "
                              f"temporal_offset {cfg.data.temporal_offset}")
        out[split] = ds
    return out


# Fields that change what the weights mean: a resume that changes them is an error.
_RESUME_FIXED = ("model.", "data.window:", "data.temporal_offset:", "data.gap:", "data.dataset:")


def _load_resume_state(cfg: Config, resume_from: str | Path, ckpt_dir: Path) -> dict[str, Any]:
    """The checkpoint to continue from, refused when the config changes what its weights mean."""
    state = load_checkpoint(resume_from)
    diffs = dict_differences(state["config"], cfg.to_dict())
    fixed = [d for d in diffs if d.startswith(_RESUME_FIXED)]
    if fixed:
        raise ConfigError(f"resume from {resume_from}: the config changes what the weights mean: "
                          f"{'; '.join(fixed)}")
    for d in diffs:
        log.info("resume: config differs from the checkpoint's: %s", d)
    for tmp in remove_stale_temporaries_in(ckpt_dir):
        log.info("resume: removed %s, left by a write that was killed", tmp)
    return state


def _set_backends(cfg: Config, device: torch.device) -> None:
    seed_everything(cfg.train.seed)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@dataclass
class _Run:
    """What one `fit` call works with, and what it has written so far."""

    cfg: Config
    trainer: Trainer
    tb: TensorBoardLogger
    datasets: dict[str, Dataset]
    sampler: EpochSampler
    train_loader: DataLoader
    val_loader: DataLoader
    arm: str
    trial_id: str
    evaluate_split: str
    reporter: Reporter | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_df: pd.DataFrame | None = None
    samples_path: Path | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.paths.run_dir)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"


def _build_run(cfg: Config, device: torch.device, resume_step: int | None, *, arm: str | None, trial_id: str,
               evaluate_split: str, reporter: Reporter | None) -> _Run:
    """Model, data, loaders, TensorBoard and trainer of a run; writes the run folder's config.yaml."""
    check_registries(cfg)
    model, loss_fn = build_components(cfg, device)
    datasets = build_datasets(cfg, ("train", "val"))
    sampler = EpochSampler(len(datasets["train"]), cfg.train.seed)
    train_loader = make_loader(EpochDataset(datasets["train"]), cfg, train=True, sampler=sampler, device=device)
    if len(train_loader) == 0:
        raise ConfigError(f"train.batch_size: got {cfg.train.batch_size}; the train split has only "
                          f"{len(datasets['train'])} samples")
    val_loader = make_loader(datasets["val"], cfg, train=False, device=device)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    purge = resume_step + 1 if resume_step is not None else None
    tb = TensorBoardLogger(run_dir, enabled=cfg.logging.tensorboard, purge_step=purge)
    trainer = Trainer(cfg, model, loss_fn, device, tb)
    trainer.set_total_steps(trainer.steps_per_epoch(train_loader) * cfg.train.epochs)
    return _Run(cfg=cfg, trainer=trainer, tb=tb, datasets=datasets, sampler=sampler, train_loader=train_loader,
                val_loader=val_loader, arm=arm or arm_key({WINDOW_KEY: cfg.data.window, OFFSET_KEY: cfg.data.temporal_offset}),
                trial_id=trial_id, evaluate_split=evaluate_split, reporter=reporter)


def _validate(run: _Run, metrics: dict[str, Any], want_images: bool) -> bool:
    """Whole-split metrics and the validation loss into `metrics`; returns whether this epoch is
    the best so far (by validation PSNR)."""
    trainer, step = run.trainer, run.trainer.step
    means, df = trainer.evaluate(run.val_loader, split="val", arm=run.arm, trial_id=run.trial_id)
    val_loss = trainer.validation_loss(run.val_loader, images_step=step if want_images else None)
    metrics.update(val_psnr=means["psnr"], val_ssim=means["ssim"], val_lpips=means["lpips"], val_loss=val_loss)
    run.tb.scalars({"psnr": means["psnr"], "ssim": means["ssim"], "lpips": means["lpips"], "loss": val_loss},
                   step, prefix="val/")
    is_best = trainer.best_metric is None or means["psnr"] > trainer.best_metric
    if is_best:
        trainer.best_metric, trainer.best_epoch = means["psnr"], trainer.epoch
        trainer.best_means = {k: v for k, v in means.items() if k != "num_samples"}
        run.best_df = df
    metrics.update(best_val_psnr=trainer.best_metric, best_epoch=trainer.best_epoch, is_best=is_best)
    return is_best


def _save_epoch(run: _Run, metrics: dict[str, Any], is_best: bool) -> None:
    """last.pt (whole training state), best.pt and snapshots as copies of it, and the per-sample
    table at a new best."""
    cfg, trainer = run.cfg, run.trainer
    state = trainer.state_dict()
    state.update(format=CHECKPOINT_FORMAT, model_args=model_args(cfg.model, cfg.data.window),
                 rng=capture_rng_state(), config=cfg.to_dict(), window=cfg.data.window,
                 metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float, bool))},
                 torch_version=str(torch.__version__))
    save_checkpoint(state, run.last_path)
    del state
    if is_best:
        atomic_copy(run.last_path, run.best_path)
        if run.evaluate_split == "val":
            # Written at every new best, so a trial stopped early (ASHA) still has its table.
            run.samples_path = write_samples_table(run.best_df, run.run_dir, csv=cfg.eval.write_csv)
    if cfg.train.snapshot_every and trainer.epoch % cfg.train.snapshot_every == 0:
        atomic_copy(run.last_path, run.last_path.parent / f"epoch_{trainer.epoch:04d}.pt")


def _run_epoch(run: _Run, epoch: int, t_run: float) -> None:
    """Train one epoch, validate when due, save the checkpoints, report."""
    cfg, trainer = run.cfg, run.trainer
    # RNGs restart from (seed, epoch) so augmentations do not depend on what ran before.
    seed_everything(mix_seed(cfg.train.seed, epoch))
    run.sampler.set_epoch(epoch)
    stats = trainer.train_one_epoch(run.train_loader, epoch)
    trainer.epoch = epoch + 1
    step = trainer.step
    run.tb.scalar("train/epoch_loss", stats["train_loss"], step)
    run.tb.scalar("epoch", trainer.epoch, step)
    last = trainer.epoch == cfg.train.epochs
    validate = trainer.epoch % cfg.train.val_every == 0 or last
    img_every = cfg.logging.image_every
    want_images = img_every > 0 and (trainer.epoch % img_every == 0 or last)
    metrics: dict[str, Any] = {"epoch": trainer.epoch, "step": step, "train_loss": stats["train_loss"],
                               "lr": trainer.lr, "skipped_steps": trainer.skipped_steps,
                               "samples_per_s": stats["samples_per_s"],
                               "data_wait_fraction": stats["data_wait_fraction"]}
    is_best = False
    if validate:
        is_best = _validate(run, metrics, want_images)
    elif want_images:
        trainer.validation_loss(run.val_loader, max_batches=1, images_step=step)
    _save_epoch(run, metrics, is_best)
    metrics["time_total_s"] = time.perf_counter() - t_run
    run.history.append(metrics)
    run.tb.flush()
    if validate and run.reporter is not None:
        run.reporter(dict(metrics), run.last_path.parent)


def _final_evaluation(run: _Run, device: torch.device) -> dict[str, float]:
    """Means of the best checkpoint on the final split; writes its per-sample table unless the
    table written at the best validation of this process already is that table."""
    cfg, trainer, split = run.cfg, run.trainer, run.evaluate_split
    if split == "val" and run.best_df is not None:
        means = dict(trainer.best_means)
        run.samples_path = run.run_dir / "samples.parquet"
    else:
        if run.best_path.is_file():
            trainer.model.load_state_dict(load_checkpoint(run.best_path)["model"])
        ds = run.datasets["val"] if split == "val" else build_datasets(cfg, (split,))[split]
        loader = make_loader(ds, cfg, train=False, device=device)
        # The test evaluation keeps a few predicted frames for the report's frames panel (lift.evaluate).
        frames_dir = run.run_dir / "frames" if split == "test" else None
        means, df = trainer.evaluate(loader, split=split, arm=run.arm, trial_id=run.trial_id, frames_dir=frames_dir)
        run.samples_path = write_samples_table(df, run.run_dir, csv=cfg.eval.write_csv)
    means = {k: v for k, v in means.items() if k != "num_samples"}
    run.tb.scalars(means, trainer.step, prefix=f"final_{split}/")
    run.tb.hparams(cfg.to_dict(), {f"{split}_{k}": v for k, v in means.items()}, trainer.step)
    return means


def fit(config: Config, reporter: Reporter | None = None, resume_from: str | Path | None = None, *,
        evaluate_split: str = "val", trial_id: str | None = None, arm: str | None = None) -> FitResult:
    """Train `config` end to end; see the module docstring for the run folder's contents.

    reporter(metrics, checkpoint_dir) is called after each validation, once the checkpoints of that
    epoch are on disk. evaluate_split: split of the final evaluation whose per-sample table is
    written to samples.parquet ("val" for tuning, "test" for the confirm stage); it uses the best
    checkpoint by validation PSNR. arm: the ``arm`` column of the per-sample tables (a study passes
    its arm name, lift.arms.arm_key); default the name of the window and offset (``window=3``).
    """
    if evaluate_split not in ("val", "test"):
        raise ConfigError(f"evaluate_split: got {evaluate_split!r}; allowed values are 'val', 'test'")
    cfg = config_from_dict(config.to_dict())
    run_dir = Path(cfg.paths.run_dir) if cfg.paths.run_dir else default_run_dir(cfg.name)
    cfg.paths.run_dir = str(run_dir)
    device = resolve_device(cfg.train.device)
    resume_state = None
    if resume_from is not None:
        resume_state = _load_resume_state(cfg, resume_from, run_dir / "checkpoints")
    _set_backends(cfg, device)
    run = _build_run(cfg, device, int(resume_state["step"]) if resume_state is not None else None, arm=arm,
                     trial_id=trial_id or run_dir.name, evaluate_split=evaluate_split, reporter=reporter)
    trainer = run.trainer
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
        restore_rng_state(resume_state["rng"])
        log.info("resumed from %s at epoch %d, step %d, lr %.3g", resume_from, trainer.epoch, trainer.step, trainer.lr)
    del resume_state
    t_run = time.perf_counter()
    try:
        for epoch in range(trainer.epoch, cfg.train.epochs):
            _run_epoch(run, epoch, t_run)
        final_means = _final_evaluation(run, device)
    finally:
        run.tb.close()
    best = run.best_path if run.best_path.is_file() else None
    samples = run.samples_path if run.samples_path is not None and run.samples_path.is_file() else None
    return FitResult(
        run_dir=run_dir, last_checkpoint=run.last_path, best_checkpoint=best, samples_path=samples,
        epochs_completed=trainer.epoch, step=trainer.step, best_val_psnr=trainer.best_metric,
        best_epoch=trainer.best_epoch, final_metrics=final_means, skipped_steps=trainer.skipped_steps,
        history=run.history)
