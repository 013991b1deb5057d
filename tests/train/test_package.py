"""Real (tiny) training runs: the loss goes down, the run folder is complete, resume is exact,
non-finite losses are skipped then stop the run, and checkpoints evaluate through lift.evaluate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lift.model.losses as losses
from lift.checkpoint import load_checkpoint, model_from_checkpoint
from lift.config import load_config
from lift.devices import autocast_dtype
from lift.model import model_args
from lift.optim import NonFiniteLossError
from lift.train import fit


def _events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _values(acc: EventAccumulator, tag: str) -> list[float]:
    return [e.value for e in acc.Scalars(tag)]


TRAIN_SCALARS = {"train/loss", "train/reconstruction", "train/teacher", "train/distillation", "lr", "time/batch",
                 "time/data", "samples_per_s", "grad_norm", "skipped_steps", "train/epoch_loss"}
VAL_SCALARS = {"val/psnr", "val/ssim", "val/loss"}
IMAGES = {"images/prediction_vs_target", "images/error_map", "images/window", "images/flows",
          "images/flows_ground_truth", "images/fusion_weights"}


def test_synthetic_training_lowers_the_loss_and_fills_the_run_folder(tiny) -> None:
    cfg = tiny("syn", **{"train.epochs": 3, "train.max_steps_per_epoch": 8, "train.snapshot_every": 2})
    reports: list[tuple[dict[str, Any], Path | None]] = []
    result = fit(cfg, reporter=lambda m, d: reports.append((m, d)))
    run = Path(cfg.paths.run_dir)

    acc = _events(run)
    losses_logged = _values(acc, "train/loss")
    assert len(losses_logged) == result.step == 24
    assert np.mean(losses_logged[-4:]) < 0.8 * losses_logged[0]
    assert TRAIN_SCALARS | VAL_SCALARS <= set(acc.Tags()["scalars"])
    assert IMAGES <= set(acc.Tags()["images"])
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(acc.PluginTagToContent("hparams"))
    assert _values(acc, "lr")[0] == pytest.approx(1e-3 * 2 / 3)  # after step 1 of a 2-step warm-up

    # the run folder of the CLI contract, plus the periodic snapshot
    assert load_config(run / "config.yaml") == cfg
    ck = run / "checkpoints"
    assert {p.name for p in ck.iterdir()} == {"best.pt", "last.pt", "epoch_0002.pt"}
    last = load_checkpoint(ck / "last.pt")
    assert (last["epoch"], last["step"]) == (3, 24)
    assert set(last) >= {"model", "model_args", "optimizer", "scaler", "rng", "config", "best_metric"}
    assert "scheduler" not in last  # the learning rate follows from the step
    assert last["model_args"] == model_args(cfg.model, cfg.data.window)

    # reporter: after each validation, with the folder holding the checkpoint just written
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3]
    assert all(d == ck for _, d in reports)
    assert set(reports[-1][0]) >= {"epoch", "step", "val_psnr", "val_ssim", "val_lpips", "train_loss", "lr"}
    assert math.isnan(reports[-1][0]["val_lpips"])  # eval.lpips is off in this config

    # per-sample table of the best checkpoint on the validation windows
    table = pd.read_parquet(result.samples_path)
    assert result.samples_path == run / "samples.parquet"
    assert set(table["arm"]) == {"window=3"} and set(table["split"]) == {"val"}
    assert table["sample_id"].is_unique and "epe" in table.columns
    assert table["psnr"].mean() == pytest.approx(result.best_val_psnr)
    assert result.final_metrics["psnr"] == pytest.approx(result.best_val_psnr)

    model, loaded_cfg = model_from_checkpoint(ck / "best.pt", "cpu")
    assert loaded_cfg == cfg and not model.training


def _interrupt_after_first_validation(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
    if metrics["epoch"] == 1:
        raise KeyboardInterrupt("simulated kill after epoch 1")


def test_resume_reproduces_the_uninterrupted_run(tiny) -> None:
    # accumulation over 2 micro-batches with an odd number of batches exercises the short last group
    over = {"optim.accum_steps": 2, "train.max_steps_per_epoch": None, "train.epochs": 2}
    straight = fit(tiny("straight", **over))
    cfg = tiny("interrupted", **over)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, reporter=_interrupt_after_first_validation)
    half = load_checkpoint(Path(cfg.paths.run_dir) / "checkpoints" / "last.pt")
    assert (half["epoch"], half["step"]) == (1, straight.history[0]["step"])
    resumed = fit(cfg, resume_from=Path(cfg.paths.run_dir) / "checkpoints" / "last.pt")

    assert [h["epoch"] for h in resumed.history] == [2]  # no repeated, no skipped epoch
    a, b = straight.history[-1], resumed.history[-1]
    assert b["step"] == a["step"] and b["lr"] == a["lr"]
    for key in ("train_loss", "val_psnr", "val_ssim", "val_loss"):
        assert b[key] == a[key], key
    sa = pd.read_parquet(straight.samples_path).drop(columns="trial_id")
    sb = pd.read_parquet(resumed.samples_path).drop(columns="trial_id")
    pd.testing.assert_frame_equal(sa, sb)
    wa = load_checkpoint(straight.last_checkpoint)["model"]
    wb = load_checkpoint(resumed.last_checkpoint)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _nan_on_calls(calls: set[int] | None, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make LIFTLoss return NaN on the given training calls (all calls when None)."""
    real = losses.LIFTLoss.forward
    seen = [0]

    def forward(self, pred, aux, target):
        total, terms = real(self, pred, aux, target)
        if torch.is_grad_enabled():
            seen[0] += 1
            if calls is None or seen[0] in calls:
                total = total * float("nan")
        return total, terms

    monkeypatch.setattr(losses.LIFTLoss, "forward", forward)
    return seen


def test_non_finite_losses_are_skipped_counted_and_logged(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    _nan_on_calls({2, 5}, monkeypatch)
    cfg = tiny("nan", **{"train.epochs": 1, "train.max_steps_per_epoch": 6})
    result = fit(cfg)
    assert result.skipped_steps == 2
    assert result.step == 4  # 6 attempted, 2 skipped
    last = load_checkpoint(result.last_checkpoint)
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    acc = _events(Path(cfg.paths.run_dir))
    assert max(_values(acc, "train/skipped_steps")) == 2
    assert math.isfinite(result.final_metrics["psnr"])


def test_persistent_non_finite_losses_stop_the_run_with_a_clear_message(tiny, monkeypatch: pytest.MonkeyPatch
                                                                       ) -> None:
    _nan_on_calls(None, monkeypatch)
    cfg = tiny("nan_stop", **{"train.max_nonfinite_steps": 3})
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive steps had a non-finite loss.*optim.lr"):
        fit(cfg)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_and_accumulation_on_cpu(tiny, amp: str) -> None:
    from lift.data import build_dataset

    assert autocast_dtype("auto", torch.device("cpu"), "training") is None
    cfg = tiny(f"amp_{amp}", **{"train.amp": amp, "train.epochs": 1, "train.max_steps_per_epoch": 2,
                                "optim.accum_steps": 3})
    batches = len(build_dataset(cfg.data, "train", seed=cfg.train.seed)) // cfg.train.batch_size
    result = fit(cfg)
    assert result.step == min(2, math.ceil(batches / 3)) and result.skipped_steps == 0
    scaler = load_checkpoint(result.last_checkpoint)["scaler"]
    # fp16 keeps a loss scale (GradScaler); bf16 has fp32's range and needs none
    assert ("scale" in scaler) == (amp == "fp16")
    assert math.isfinite(result.final_metrics["psnr"])


def test_final_evaluation_on_the_test_split_and_resuming_a_finished_run(tiny) -> None:
    from lift.data import build_dataset

    cfg = tiny("confirm", **{"train.epochs": 1, "train.max_steps_per_epoch": 2})
    # A study labels the rows with its arm name, which may name more than window and offset.
    result = fit(cfg, evaluate_split="test", arm="window=3,loss.lpips=0")
    table = pd.read_parquet(result.samples_path)
    assert set(table["split"]) == {"test"} and set(table["arm"]) == {"window=3,loss.lpips=0"}
    assert list(table["sample_id"]) == build_dataset(cfg.data, "test", train=False).sample_ids
    assert result.final_metrics["psnr"] == pytest.approx(table["psnr"].mean())

    # a finished run resumed: no epoch is trained again, the final evaluation is redone on val
    again = fit(cfg, resume_from=result.last_checkpoint)
    assert again.history == [] and again.step == result.step
    val = pd.read_parquet(again.samples_path)
    assert set(val["split"]) == {"val"} and val["psnr"].mean() == pytest.approx(result.best_val_psnr)
    assert set(val["arm"]) == {"window=3"}  # the default: arm_key(window, temporal_offset)
