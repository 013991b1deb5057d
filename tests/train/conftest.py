"""Tiny training configs for the training tests (seconds on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lift.config import Config, load_config


def tiny_config(run_dir: Path, dataset: str = "synthetic", **overrides: Any) -> Config:
    """The smoke preset shrunk further: 32x32 crops, 2-deep blocks, a few steps per epoch."""
    values: dict[str, Any] = {
        "data.dataset": dataset,
        "data.crop_size": [32, 32],
        "data.eval_targets_per_video": 2,
        "model.block_depth": 2,
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.eval_batch_size": 8,
        "train.max_steps_per_epoch": 6,
        # The presets draw a fixed number of random positions per epoch; these few-step tests check
        # the loss trend, which one shuffled pass over every position shows with less noise.
        "data.train_samples_per_epoch": None,
        "train.amp": "off",
        "train.device": "cpu",
        "optim.lr": 1e-3,
        "optim.warmup_steps": 2,
        "eval.lpips": False,
        "logging.log_every": 1,
        "logging.progress": "off",
        "paths.run_dir": str(run_dir),
    }
    if dataset == "synthetic":
        values.update({"data.frame_size": [32, 48], "data.max_sequences": 2})
    values.update(overrides)
    return load_config("smoke", values)


@pytest.fixture
def tiny(tmp_path: Path):
    def make(name: str = "run", dataset: str = "synthetic", **overrides: Any) -> Config:
        return tiny_config(tmp_path / name, dataset, **overrides)
    return make
