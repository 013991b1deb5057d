"""TensorBoardLogger writes real event files: read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lift.config import Config
from lift.logging import TensorBoardLogger, hparam_values


def _read(log_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_images_and_hparams_read_back(tmp_path: Path) -> None:
    b, n, h, w = 2, 4, 16, 16
    batch = {"frames": torch.rand(b, n, 3, h, w), "times": torch.tensor([[0.0, 1.0, -1.0, 2.0]] * b),
             "target": torch.rand(b, 3, h, w), "timestep": torch.full((b,), 0.5)}
    aux = {"flows": torch.randn(b, n, 2, h, w), "fusion_weights": torch.softmax(torch.randn(b, n, 1, h, w), 1)}
    with TensorBoardLogger(tmp_path) as tb:
        for step in range(1, 4):
            tb.scalars({"loss": 1.0 / step, "reconstruction": 0.5 / step}, step, prefix="train/")
        tb.scalar("val/lpips", float("nan"), 3)  # NaN metrics are left out, not drawn
        tags = tb.images(batch, batch["target"], aux, step=3, num=2)
        tb.hparams(Config().to_dict(), {"val_psnr": 30.5, "val_lpips": float("nan")}, step=3)
    acc = _read(tmp_path)
    scalars = acc.Tags()["scalars"]
    assert {"train/loss", "train/reconstruction", "hparam/val_psnr"} <= set(scalars)
    assert "val/lpips" not in scalars and "hparam/val_lpips" not in scalars
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([1.0, 0.5, 1.0 / 3])
    assert set(acc.Tags()["images"]) == set(tags) == {
        "images/prediction_vs_target", "images/error_map", "images/window", "images/flows", "images/fusion_weights"}
    img = acc.Images("images/flows")[0]
    assert img.step == 3 and img.height > h and img.width > n * w
    hp_tags = set(acc.PluginTagToContent("hparams"))
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= hp_tags


def test_hparam_values_are_plugin_types() -> None:
    values = hparam_values(Config().to_dict())
    assert values["data.window"] == 3 and values["data.crop_size"] == "128x128"
    assert all(isinstance(v, (bool, str, int, float)) for v in values.values())


def test_disabled_logger_writes_nothing(tmp_path: Path) -> None:
    tb = TensorBoardLogger(tmp_path / "off", enabled=False)
    tb.scalar("x", 1.0, 1)
    tb.close()
    assert not (tmp_path / "off").exists()
