"""The trainable's adapter pieces that need no Ray: config assembly, metrics, checkpoint restore."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ray.tune import Checkpoint

from lift.config import ConfigError, load_config
from lift.tune.trainable import _restore_run_files, _scalar_metrics, trial_config


def test_trial_config_applies_search_values_and_the_trial_seed() -> None:
    base = load_config("default", {"data.window": 7, "optim.lr": 1e-3})
    config = {"study": {"stage": "tune", "arm": "window=7,offset=1", "seed": 42},
              "loss.lpips": 0.125, "optim.lr": 5e-4}
    cfg, study = trial_config(config, {"window=7,offset=1": base.to_dict()})
    assert (cfg.loss.lpips, cfg.optim.lr, cfg.train.seed, cfg.data.window) == (0.125, 5e-4, 42, 7)
    assert study["stage"] == "tune"
    with pytest.raises(ConfigError, match="loss.nope"):
        trial_config({**config, "loss.nope": 1.0}, {"window=7,offset=1": base.to_dict()})


def test_metrics_become_plain_scalars_and_keep_fits_time_apart() -> None:
    out = _scalar_metrics({"val_psnr": 30.5, "epoch": 2, "is_best": True, "loss": torch.tensor(0.25),
                           "time_total_s": 12.0, "hist": [1, 2]})
    assert out == {"val_psnr": 30.5, "epoch": 2, "is_best": True, "loss": 0.25, "fit_time_s": 12.0}


def test_restore_copies_last_and_best_into_a_fresh_run_folder(tmp_path: Path) -> None:
    reported = tmp_path / "checkpoint_000001"
    reported.mkdir()
    (reported / "last.pt").write_bytes(b"last")
    (reported / "best.pt").write_bytes(b"best")
    (reported / "trial_timing.json").write_text('[{"seconds": 3.0}]')
    run_dir = tmp_path / "run"
    last = _restore_run_files(Checkpoint.from_directory(str(reported)), run_dir)
    assert last == run_dir / "checkpoints" / "last.pt" and last.read_bytes() == b"last"
    assert (run_dir / "checkpoints" / "best.pt").read_bytes() == b"best"
    # The attempts recorded so far come back with the checkpoint, unless the run folder has them.
    assert (run_dir / "trial_timing.json").read_text() == '[{"seconds": 3.0}]'
    (run_dir / "trial_timing.json").write_text("[]")
    _restore_run_files(Checkpoint.from_directory(str(reported)), run_dir)
    assert (run_dir / "trial_timing.json").read_text() == "[]"
    (reported / "last.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no last.pt"):
        _restore_run_files(Checkpoint.from_directory(str(reported)), tmp_path / "run2")
