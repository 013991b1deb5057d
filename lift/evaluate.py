"""Evaluation: per-sample tables for a model or the baselines, their summary, and the CLI.

``python -m lift.evaluate (--checkpoint C | --baselines) [--config F] [--dataset NAME]
[--data_root R] [--split test] [--window W] [--temporal_offset S] [--set k=v ...] [--csv] --out DIR``
writes ``DIR/samples.parquet`` (one row per sample and arm; columns in ``ARCHITECTURE.md``) and
prints the means with 95% confidence intervals per arm.

Choices worth knowing:

- Baselines (arms ``baseline=repeat``, ``baseline=blend`` and, where the published weights are
  present and the target is the middle frame, ``baseline=rife_hd``: the published RIFE HD model,
  untrained) run through the same metric code on
  the same loader, hence the same sample ids. ``repeat`` shows the nearest anchor: the left one
  when ``timestep < 0.5``, the right one when ``timestep > 0.5``, and the left one on the tie
  ``timestep == 0.5`` (the default gap-2 triplet), i.e. the previous frame is held, as a
  player at the original frame rate would. ``blend`` is the mean of the two anchors.
- Identical prediction and target give PSNR ``+inf``. The table keeps ``+inf``; :func:`summarize`
  averages the finite values and reports how many were infinite (``n_inf``); if every value is
  infinite, the mean is ``+inf``. No cap is applied, so a mean never depends on an arbitrary
  ceiling; ``n_inf`` makes the exclusion visible.
- Model inputs are padded (at the bottom and right, in ``model.pad_mode``) to ``model.size_multiple`` and the
  prediction and flows are cropped back, so metrics always cover the original frame. Predictions
  are clamped to [0, 1] before the metrics, as a frame written to disk would be.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from PIL import Image
from tqdm import tqdm

from lift import arms as arm_names
from lift.atomic import OutputPathError, atomic_path, atomic_write_text, check_output_dir, write_json
from lift.checkpoint import CheckpointError, model_from_checkpoint
from lift.config import Config, ConfigError, EvalConfig, ModelConfig, apply_overrides, load_config
from lift.data import BadVideoError, DatasetError, WindowError, build_dataset
from lift.data.loading import make_loader
from lift.devices import autocast, autocast_dtype, resolve_device
from lift.metrics.flow import epe_stats, reference_epe, warp_error
from lift.metrics.image import psnr, ssim
from lift.metrics.lpips import LPIPSUnavailableError, load_lpips, lpips_distance
from lift.model import InputPadder, build_model, pretrained
from lift.model.pretrained import PretrainedUnavailableError

SAMPLES_FILE = "samples.parquet"
ID_COLUMNS = ("sample_id", "video_id", "cluster_id", "target_index", "timestep")
RUN_COLUMNS = ("arm", "split", "seed", "trial_id")
IMAGE_METRICS = ("psnr", "ssim", "lpips")
FLOW_GT_METRICS = ("epe", "epe_gt1", "epe_gt3")
# warp_error: photometric error of the network's anchor flows; epe_tvl1: their EPE against TV-L1.
FLOW_METRICS = FLOW_GT_METRICS + ("warp_error", "epe_tvl1")
METRICS = IMAGE_METRICS + FLOW_METRICS
REQUIRED_COLUMNS = ID_COLUMNS + IMAGE_METRICS + RUN_COLUMNS
# rife_hd: the published RIFE HD model, untrained (lift.model.pretrained), where its weights are present.
BASELINES = ("repeat", "blend", "rife_hd")


# ---------------------------------------------------------------------------------------------
# Arms and baselines
# ---------------------------------------------------------------------------------------------

def baseline_arm(name: str) -> str:
    if name not in BASELINES:
        raise ValueError(f"baseline {name!r}: expected one of {', '.join(BASELINES)}")
    return arm_names.baseline_key(name)


def repeat_baseline(frames: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    """Nearest anchor per sample (``frames`` [B, N, 3, H, W], anchors first); ties (0.5) -> left."""
    right = (timestep.to(frames.device).view(-1, 1, 1, 1) > 0.5)
    return torch.where(right, frames[:, 1], frames[:, 0])


def blend_baseline(frames: torch.Tensor) -> torch.Tensor:
    """Mean of the two anchors (``frames`` [B, N, 3, H, W], anchors first)."""
    return 0.5 * (frames[:, 0] + frames[:, 1])


def available_baselines(gap: int = 2) -> tuple[str, ...]:
    """The baselines that can run here on data with anchors `gap` frames apart: rife_hd only where
    the published weights are present and the target is the middle frame (gap 2)."""
    return tuple(name for name in BASELINES if name != "rife_hd" or (pretrained.available() and gap == 2))


class PublishedBaseline:
    """The published RIFE HD model, untrained, on the two anchors (the window-3 network with
    model.pretrained rife_hd), padded as the official inference pads."""

    def __init__(self, device: torch.device) -> None:
        self.model = build_model(ModelConfig(pretrained="rife_hd"), 3).to(device).eval()

    def __call__(self, frames: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        anchors = frames[:, :2]
        padder = InputPadder(anchors.shape, self.model.size_multiple, self.model.pad_mode)
        times = torch.tensor([[0.0, 1.0]], device=frames.device).expand(frames.shape[0], 2)
        pred, _ = self.model(*padder.pad(anchors), times, timestep.to(frames.device).reshape(-1))
        return padder.unpad(pred)


# ---------------------------------------------------------------------------------------------
# Batches (lift.data.loading.make_loader collates evaluation batches by frame size: a list of batches)
# ---------------------------------------------------------------------------------------------

def _iter_batches(loader: Iterable[Any], max_batches: int | None) -> Iterator[dict[str, Any]]:
    for i, item in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            return
        if isinstance(item, (list, tuple)):
            yield from item
        else:
            yield item


def _as_list(values: Any, n: int) -> list[Any]:
    if isinstance(values, torch.Tensor):
        return values.reshape(-1).tolist()
    if isinstance(values, (str, int, float)):
        return [values] * n
    return list(values)


def _dataset_extras(loader: Any) -> dict[str, Any]:
    spec = getattr(getattr(loader, "dataset", None), "spec", None)
    if spec is None:
        return {}
    return {"window": int(spec.window), "temporal_offset": int(spec.temporal_offset)}


def _progress(loader: Any, desc: str, progress: bool | None, max_batches: int | None) -> Any:
    try:
        total: int | None = len(loader)
    except TypeError:
        total = None
    if max_batches is not None:
        total = max_batches if total is None else min(total, max_batches)
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    return tqdm(loader, total=total, desc=desc, disable=disable, leave=False, unit="batch")


# ---------------------------------------------------------------------------------------------
# Metrics of one batch
# ---------------------------------------------------------------------------------------------

class _Scorer:
    """Image metrics of one batch, with the LPIPS model loaded once (or not at all if disabled)."""

    def __init__(self, eval_cfg: EvalConfig, device: torch.device, lpips_model: torch.nn.Module | None) -> None:
        self.protocol = eval_cfg.protocol
        self.lpips_model = lpips_model
        if self.lpips_model is None and eval_cfg.lpips:
            # Raises LPIPSUnavailableError (with instructions) before any sample is evaluated.
            self.lpips_model = load_lpips(eval_cfg.lpips_weights, device)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
        pred = pred.float().clamp(0.0, 1.0)
        target = target.float()
        out = {
            "psnr": psnr(pred, target, self.protocol).cpu().numpy(),
            "ssim": ssim(pred, target, self.protocol).cpu().numpy(),
        }
        if self.lpips_model is not None:
            out["lpips"] = lpips_distance(self.lpips_model, pred, target).double().cpu().numpy()
        else:
            out["lpips"] = np.full(pred.shape[0], np.nan)
        return out


def _flow_metrics(flows: torch.Tensor, batch: dict[str, Any], frames: torch.Tensor, target: torch.Tensor,
                  reference_flow: bool) -> dict[str, np.ndarray]:
    """Flow columns for the anchors' flows ``flows`` [B, 2, 2, H, W]; each is the mean over both anchors."""
    flows = flows.float()
    out: dict[str, np.ndarray] = {}
    anchors = frames[:, :2].float()
    out["warp_error"] = warp_error(flows, anchors, target.float().unsqueeze(1)).mean(dim=1).double().cpu().numpy()
    if "flow_gt" in batch:
        flow_gt = batch["flow_gt"][:, :2].to(flows.device)
        valid = batch["valid"][:, :2].to(flows.device) if "valid" in batch else None
        for name, value in epe_stats(flows, flow_gt, valid).items():
            out[name] = torch.nanmean(value, dim=1).double().cpu().numpy()
    if reference_flow:
        per_anchor = [reference_epe(flows[:, k], target, anchors[:, k]) for k in range(2)]
        out["epe_tvl1"] = torch.stack(per_anchor, dim=1).mean(dim=1).double().cpu().numpy()
    return out


def _rows(batch: dict[str, Any], metrics: dict[str, np.ndarray], run: dict[str, Any]) -> list[dict[str, Any]]:
    n = int(batch["target"].shape[0])
    ids = _as_list(batch["sample_id"], n)
    videos = _as_list(batch["video_id"], n)
    clusters = _as_list(batch["cluster_id"], n)
    targets = _as_list(batch["target_index"], n)
    timesteps = _as_list(batch["timestep"], n)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "sample_id": str(ids[i]),
            "video_id": str(videos[i]),
            "cluster_id": str(clusters[i]),
            "target_index": int(targets[i]),
            "timestep": float(timesteps[i]),
        }
        row.update({name: float(values[i]) for name, values in metrics.items()})
        row.update(run)
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("evaluation produced no samples: the loader is empty (check the split and the window)")
    metric_cols = [c for c in METRICS if c in df.columns]
    extra = [c for c in df.columns if c not in REQUIRED_COLUMNS and c not in metric_cols]
    ordered = list(ID_COLUMNS) + [c for c in METRICS if c in df.columns] + list(RUN_COLUMNS) + extra
    df = df[ordered]
    df["target_index"] = df["target_index"].astype("int64")
    df["seed"] = df["seed"].astype("int64")
    for col in ("sample_id", "video_id", "cluster_id", "arm", "split", "trial_id"):
        df[col] = df[col].astype(str)
    return df


# ---------------------------------------------------------------------------------------------
# Predicted frames for the report's frames panel
# ---------------------------------------------------------------------------------------------

# Test samples whose predicted frames the confirm stage keeps (per run), for the report's panel.
PANEL_SAMPLES = 12
FRAMES_INDEX = "index.json"


def panel_sample_ids(sample_ids: Sequence[str], k: int = PANEL_SAMPLES) -> set[str]:
    """A fixed subset of an evaluation set: the ``k`` ids with the smallest SHA-1. Every arm of a study is
    evaluated on the same ids, so every arm keeps the frames of the same samples."""
    return set(sorted(sample_ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())[:k])


class FrameSaver:
    """Writes the prediction and the ground truth of the wanted samples as PNG under ``folder``, with an
    ``index.json`` (sample id -> file names) that lift.report reads."""

    def __init__(self, folder: Path, wanted: set[str]) -> None:
        self.folder, self.wanted = Path(folder), set(wanted)
        self.index: dict[str, dict[str, str]] = {}

    @staticmethod
    def _png(image: torch.Tensor, path: Path) -> None:
        arr = (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        with atomic_path(path) as tmp:
            Image.fromarray(arr).save(tmp, format="PNG")

    def add(self, sample_ids: Sequence[str], pred: torch.Tensor, target: torch.Tensor) -> None:
        for i, sid in enumerate(sample_ids):
            if sid not in self.wanted:
                continue
            stem = hashlib.sha1(sid.encode()).hexdigest()[:16]
            self.folder.mkdir(parents=True, exist_ok=True)
            self._png(pred[i], self.folder / f"{stem}_pred.png")
            self._png(target[i], self.folder / f"{stem}_target.png")
            self.index[sid] = {"pred": f"{stem}_pred.png", "target": f"{stem}_target.png"}

    def close(self) -> None:
        if self.index:
            write_json(self.folder / FRAMES_INDEX, self.index, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

def evaluate_model(model: torch.nn.Module, loader: Iterable[Any], *, device: str | torch.device,
                   eval_cfg: EvalConfig, arm: str, split: str, seed: int, trial_id: str,
                   amp_dtype: torch.dtype | None = None, max_batches: int | None = None,
                   reference_flow: bool = False, progress: bool | None = None,
                   lpips_model: torch.nn.Module | None = None, frames_dir: Path | None = None) -> pd.DataFrame:
    """Per-sample table of ``model`` on ``loader`` (batches of the dataset contract).

    ``frames_dir``: keep the predicted and true frames of :func:`panel_sample_ids` of the loader's
    dataset there (the confirm stage does, for the report's frames panel).

    Runs under ``torch.no_grad`` with ``model.eval()`` (the mode is restored afterwards), with
    autocast when ``amp_dtype`` is given. Flow columns come from ``aux["flows"]`` (the flows from
    the target to the two anchors) when ``eval_cfg.flow_metrics``: ``warp_error`` always,
    ``epe``/``epe_gt1``/``epe_gt3`` where the batch has ``flow_gt`` (synthetic data, occlusion-aware
    with ``valid``), ``epe_tvl1`` (agreement with TV-L1; slow, CPU) only with ``reference_flow``.
    """
    device = torch.device(device)
    scorer = _Scorer(eval_cfg, device, lpips_model)
    multiple = int(getattr(model, "size_multiple", 1))
    pad_mode = str(getattr(model, "pad_mode", "replicate"))
    run = {"arm": arm, "split": split, "seed": int(seed), "trial_id": str(trial_id), **_dataset_extras(loader)}
    rows: list[dict[str, Any]] = []
    ids = getattr(getattr(loader, "dataset", None), "sample_ids", None)
    saver = FrameSaver(frames_dir, panel_sample_ids(ids)) if frames_dir is not None and ids else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in _iter_batches(_progress(loader, arm, progress, max_batches), max_batches):
                frames = batch["frames"].to(device, non_blocking=True)
                times = batch["times"].to(device, non_blocking=True)
                timestep = batch["timestep"].to(device, non_blocking=True).reshape(-1)
                target = batch["target"].to(device, non_blocking=True)
                padder = InputPadder(frames.shape, multiple, pad_mode)
                with autocast(device, amp_dtype):
                    pred, aux = model(*padder.pad(frames), times, timestep)
                pred = padder.unpad(pred)
                metrics = scorer(pred, target)
                flows = aux.get("flows") if isinstance(aux, dict) else None
                if eval_cfg.flow_metrics and flows is not None:
                    metrics.update(_flow_metrics(padder.unpad(flows[:, :2]), batch, frames, target, reference_flow))
                rows += _rows(batch, metrics, run)
                if saver is not None:
                    saver.add(_as_list(batch["sample_id"], int(target.shape[0])), pred, target)
    finally:
        model.train(was_training)
    if saver is not None:
        saver.close()
    return _table(rows)


def evaluate_baselines(loader: Iterable[Any], *, eval_cfg: EvalConfig, split: str,
                       device: str | torch.device = "cpu", baselines: Sequence[str] = ("repeat", "blend"),
                       seed: int = 0, trial_id: str = "baseline", max_batches: int | None = None,
                       progress: bool | None = None, lpips_model: torch.nn.Module | None = None) -> pd.DataFrame:
    """Per-sample table of the baselines (arms ``baseline=<name>``) on ``loader``, one pass over it."""
    device = torch.device(device)
    arms = [baseline_arm(name) for name in baselines]
    published = PublishedBaseline(device) if "rife_hd" in baselines else None
    scorer = _Scorer(eval_cfg, device, lpips_model)
    extras = _dataset_extras(loader)
    rows: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    with torch.no_grad():
        for batch in _iter_batches(_progress(loader, "baselines", progress, max_batches), max_batches):
            frames = batch["frames"].to(device)
            target = batch["target"].to(device)
            for name, arm in zip(baselines, arms):
                if name == "rife_hd" and published is not None:
                    pred = published(frames, batch["timestep"])
                else:
                    pred = repeat_baseline(frames, batch["timestep"]) if name == "repeat" else blend_baseline(frames)
                run = {"arm": arm, "split": split, "seed": int(seed), "trial_id": str(trial_id), **extras}
                rows[arm] += _rows(batch, scorer(pred, target), run)
    return _table([row for arm in arms for row in rows[arm]])


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def check_samples_table(df: pd.DataFrame, where: str = "samples table") -> None:
    """Raise ValueError unless ``df`` has every required column and unique sample ids per run."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; required: {list(REQUIRED_COLUMNS)}")
    key = ["arm", "trial_id", "seed", "sample_id"]
    dup = df.duplicated(subset=key, keep=False)
    if dup.any():
        first = df.loc[dup, key].iloc[0].to_dict()
        raise ValueError(f"{where}: {int(dup.sum())} rows repeat a (arm, trial_id, seed, sample_id), e.g. {first}; "
                         "each sample must appear once per run")


def write_samples_table(df: pd.DataFrame, out_dir: str | os.PathLike[str], csv: bool = False) -> Path:
    """Write ``out_dir/samples.parquet`` (and ``samples.csv`` if asked) atomically; returns the parquet path."""
    check_samples_table(df)
    out_dir = Path(out_dir)
    path = out_dir / SAMPLES_FILE
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    if csv:
        with atomic_path(path.with_suffix(".csv")) as tmp:
            df.to_csv(tmp, index=False)
    return path


def read_samples_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A per-sample table from ``samples.parquet`` (or a folder holding one), checked."""
    path = Path(path)
    if path.is_dir():
        path = path / SAMPLES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"per-sample table {path} does not exist")
    df = pd.read_parquet(path)
    check_samples_table(df, str(path))
    return df


def _mean_ci(values: np.ndarray, confidence: float) -> tuple[int, int, float, float, float]:
    """(n finite, n infinite, mean, ci_low, ci_high): t-interval over the finite values."""
    values = values[~np.isnan(values)]
    inf = np.isinf(values)
    finite = values[~inf]
    n, n_inf = int(finite.size), int(inf.sum())
    if n == 0:
        if n_inf and np.all(values > 0):
            return 0, n_inf, math.inf, math.inf, math.inf
        return 0, n_inf, math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if n < 2:
        return n, n_inf, mean, math.nan, math.nan
    sem = float(finite.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return n, n_inf, mean, mean - half, mean + half


def summarize(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and ``confidence`` t-interval of every metric per arm (arms in order of appearance).

    Columns: ``arm, metric, n, n_inf, mean, ci_low, ci_high``. Infinite values (PSNR of exact
    predictions) are excluded from n/mean/CI and counted in ``n_inf``; see the module docstring.
    Samples are treated as independent here; the paired, video-level inference is ``lift.report``'s.
    """
    records = []
    for arm, group in df.groupby("arm", sort=False):
        for metric in METRICS:
            if metric not in group.columns:
                continue
            values = group[metric].to_numpy(dtype=np.float64)
            if np.isnan(values).all():
                continue
            n, n_inf, mean, lo, hi = _mean_ci(values, confidence)
            records.append({"arm": arm, "metric": metric, "n": n, "n_inf": n_inf,
                            "mean": mean, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(records, columns=["arm", "metric", "n", "n_inf", "mean", "ci_low", "ci_high"])


def format_summary(summary: pd.DataFrame) -> str:
    lines = []
    for arm, group in summary.groupby("arm", sort=False):
        lines.append(f"{arm}")
        for rec in group.itertuples(index=False):
            note = f", {rec.n_inf} infinite not averaged" if rec.n_inf else ""
            lines.append(f"  {rec.metric:<11} {rec.mean:10.4f}  95% CI [{rec.ci_low:.4f}, {rec.ci_high:.4f}]"
                         f"  (n={rec.n}{note})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Checkpoints and the command line
# ---------------------------------------------------------------------------------------------

def load_model_for_eval(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, Config]:
    """The trained model of a checkpoint (on the CPU) and its training config."""
    return model_from_checkpoint(Path(path), "cpu")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lift.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="a trained checkpoint (best.pt / last.pt of lift.train)")
    what.add_argument("--baselines", action="store_true",
                      help="evaluate only the baselines: repeat, blend and, where its weights are present, the "
                           "published RIFE HD (rife_hd)")
    p.add_argument("--config", help="config file or preset; default: the checkpoint's config, else the defaults")
    p.add_argument("--dataset", help="data.dataset")
    p.add_argument("--data_root", help="data.data_root")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--window", type=int, help="data.window")
    p.add_argument("--temporal_offset", type=int, help="data.temporal_offset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set eval.protocol=rife (repeatable)")
    p.add_argument("--device", help="train.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--reference_flow", action="store_true",
                   help="also the EPE of the model's flows against TV-L1 (column epe_tvl1; slow)")
    p.add_argument("--max_batches", type=int, help="evaluate only this many batches (smoke runs)")
    p.add_argument("--arm", help="arm name for the table (default: from window and offset)")
    p.add_argument("--trial_id", help="trial id for the table (default: the checkpoint's run folder)")
    p.add_argument("--csv", action="store_true", help="also write samples.csv")
    p.add_argument("--out", required=True, help="output folder for samples.parquet")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    for flag, key in (("dataset", "data.dataset"), ("data_root", "data.data_root"), ("window", "data.window"),
                      ("temporal_offset", "data.temporal_offset"), ("device", "train.device")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    model: torch.nn.Module | None = None
    check_output_dir(args.out, "--out")  # before any work: the table is written last
    if checkpoint is not None:
        model, trained_cfg = load_model_for_eval(checkpoint)
    # The checkpoint's own config is the base, so that the data match the trained window unless
    # a config file or an override says otherwise.
    if args.config is not None or checkpoint is None:
        cfg = load_config(args.config, overrides)
    else:
        cfg = apply_overrides(trained_cfg, overrides)

    device = resolve_device(cfg.train.device, "train.device")
    loader = make_loader(build_dataset(cfg.data, args.split, train=False), cfg, train=False, device=device)

    if model is None:
        df = evaluate_baselines(loader, eval_cfg=cfg.eval, split=args.split, device=device,
                                baselines=available_baselines(cfg.data.gap), seed=cfg.train.seed,
                                trial_id=args.trial_id or "baseline", max_batches=args.max_batches)
    else:
        assert checkpoint is not None
        model_window = int(getattr(model, "window", cfg.data.window))
        if model_window != cfg.data.window:
            raise ConfigError(f"checkpoint {checkpoint} holds a model for window={model_window}, "
                              f"but data.window={cfg.data.window}; evaluate with --window {model_window}")
        trial = args.trial_id or (checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints"
                                  else checkpoint.stem)
        df = evaluate_model(model.to(device), loader, device=device, eval_cfg=cfg.eval,
                            arm=args.arm or arm_names.arm_key({arm_names.WINDOW_KEY: cfg.data.window,
                                                                arm_names.OFFSET_KEY: cfg.data.temporal_offset}),
                            split=args.split, seed=cfg.train.seed, trial_id=trial,
                            amp_dtype=autocast_dtype(cfg.train.amp, device, "evaluation"), max_batches=args.max_batches,
                            reference_flow=args.reference_flow)
    path = write_samples_table(df, args.out, csv=args.csv or cfg.eval.write_csv)
    print(format_summary(summarize(df)))
    print(f"wrote {len(df)} rows to {path}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """`main` for the command line: errors about the user's input are one line and exit code 2."""
    try:
        return main(argv)
    except (ConfigError, OutputPathError, CheckpointError, DatasetError, WindowError, BadVideoError,
            LPIPSUnavailableError, PretrainedUnavailableError, FileNotFoundError) as err:
        print(f"python -m lift.evaluate: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
