"""`python -m lift.interpolate` (lift/interpolate/__main__.py): the command line writes the video; bad input is one
clear line on stderr, exit code 2, and nothing written; Ctrl-C is exit 130 and nothing written.

The clip and the tiny untrained checkpoint are the fixtures of tests/conftest.py (see the interpolation
section there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from lift.interpolate import InterpolateError, interpolate_video
from lift.interpolate.__main__ import main
from lift.video_io import FrameReader


def test_cli_writes_the_video(tmp_path: Path, clip: Path, checkpoint: Path, capsys: pytest.CaptureFixture,
                              clip_spec) -> None:
    out = tmp_path / "cli.mp4"
    rc = main(["--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(out), "--factor", "8",
               "--max_frames", "3", "--quiet"])
    assert rc == 0
    assert "3 -> 24 frames" in capsys.readouterr().out
    with FrameReader(out) as reader:
        assert reader.info.fps == 8 * clip_spec.rate and reader.info.num_frames == 24 and reader.info.audio_streams == 1
    # A preview of the first 3 frames keeps only the audio of those 3 frames.
    with av.open(str(out)) as c, av.open(str(clip)) as src:
        times = [p.pts * p.time_base for p in c.demux(audio=0) if p.size]
        total = sum(1 for p in src.demux(audio=0) if p.size)
    assert 0 < len(times) < total and max(times) < Fraction(3) / clip_spec.rate
    rc = main(["--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(out), "--max_frames", "2",
               "--quiet", "--no_audio"])
    with FrameReader(out) as reader:
        assert rc == 0 and reader.info.num_frames == 4 and reader.info.audio_streams == 0


def _run_cli(capsys: pytest.CaptureFixture, checkpoint: Path, input: Path, output: Path,
             *extra: str) -> tuple[int, str]:
    rc = main(["--checkpoint", str(checkpoint), "--input", str(input), "--output", str(output), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    return rc, err


def _assert_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def test_error_unreadable_video(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    rc, err = _run_cli(capsys, checkpoint, bad, tmp_path / "o.mp4")
    _assert_error(rc, err, "cannot read video", str(bad))
    rc, err = _run_cli(capsys, checkpoint, tmp_path / "missing.mp4", tmp_path / "o.mp4")
    _assert_error(rc, err, "does not exist", "missing.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_error_no_video_stream(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture, clip_spec) -> None:
    audio_only = tmp_path / "sound.m4a"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=clip_spec.sample_rate, layout="mono")
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = clip_spec.sample_rate, 0
        for packet in list(stream.encode(chunk)) + list(stream.encode(None)):
            out.mux(packet)
    rc, err = _run_cli(capsys, checkpoint, audio_only, tmp_path / "o.mp4")
    _assert_error(rc, err, "has no video stream", "audio aac")


def test_error_checkpoint_of_another_architecture(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture,
                                                  save_checkpoint) -> None:
    # Weights of a window-3 network under a config that says window 7: the reference path is missing.
    lying = save_checkpoint(tmp_path / "w3_as_w7.pt", window=3, config_window=7)
    rc, err = _run_cli(capsys, lying, clip, tmp_path / "o.mp4")
    _assert_error(rc, err, str(lying), "does not match", "missing", "window=7")
    missing = int(err.split(" missing")[0].rsplit(" ", 1)[-1])
    assert missing > 0
    # Same window, other width: every conv is reshaped.
    wide = save_checkpoint(tmp_path / "wide.pt", window=7, width=0.5, config_width=0.25)
    rc, err = _run_cli(capsys, wide, clip, tmp_path / "o.mp4")
    _assert_error(rc, err, str(wide), "mismatched-shape")
    # A bare state_dict of some other network.
    foreign = tmp_path / "foreign.pt"
    torch.save(torch.nn.Conv2d(3, 3, 3).state_dict(), foreign)
    rc, err = _run_cli(capsys, foreign, clip, tmp_path / "o.mp4")
    _assert_error(rc, err, str(foreign), "not a LIFT training checkpoint")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 64)
    rc, err = _run_cli(capsys, garbage, clip, tmp_path / "o.mp4")
    _assert_error(rc, err, "cannot load checkpoint", str(garbage))
    assert not (tmp_path / "o.mp4").exists()


def test_error_bad_factor(tmp_path: Path, clip: Path, checkpoint: Path, model: torch.nn.Module,
                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(tmp_path / "o.mp4"),
              "--factor", "3"])
    assert exc.value.code == 2
    assert "--factor" in capsys.readouterr().err
    with pytest.raises(InterpolateError, match="factor=3"):
        interpolate_video(model, clip, tmp_path / "o.mp4", factor=3)


def test_error_output_not_writable(tmp_path: Path, clip: Path, checkpoint: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    rc, err = _run_cli(capsys, checkpoint, clip, tmp_path / "no_such_dir" / "o.mp4")
    _assert_error(rc, err, "cannot write output", "no_such_dir", "does not exist")
    rc, err = _run_cli(capsys, checkpoint, clip, tmp_path)
    _assert_error(rc, err, "is a directory")
    rc, err = _run_cli(capsys, checkpoint, clip, clip)
    _assert_error(rc, err, "is the same file as --input")


def test_error_too_few_frames_and_bad_window(tmp_path: Path, clip: Path, checkpoint: Path,
                                             source_frames: list[np.ndarray], capsys: pytest.CaptureFixture,
                                             write_folder) -> None:
    folder = write_folder(tmp_path / "one", source_frames[:1])
    rc, err = _run_cli(capsys, checkpoint, folder, tmp_path / "o.mp4")
    _assert_error(rc, err, "has 1 frame(s)", "at least 2")
    rc, err = _run_cli(capsys, checkpoint, clip, tmp_path / "o.mp4", "--window", "9")
    _assert_error(rc, err, "--window 9", "checkpoint's window (7)")
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = _run_cli(capsys, checkpoint, empty, tmp_path / "o.mp4")
    _assert_error(rc, err, "holds no images")
    assert not (tmp_path / "o.mp4").exists()


def test_error_audio_the_container_cannot_hold(tmp_path: Path, clip: Path, checkpoint: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    # WebM takes VP8/VP9/AV1 video (chosen automatically) but no AAC audio.
    out = tmp_path / "o.webm"
    rc, err = _run_cli(capsys, checkpoint, clip, out)
    _assert_error(rc, err, "cannot copy audio stream 1 (aac)", str(out), "--no_audio")
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_from_a_real_training_run(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture,
                                             clip_spec) -> None:
    """fit() -> checkpoints/best.pt -> the CLI: the formats of training and inference agree."""
    from lift.config import load_config
    from lift.train import fit

    cfg = load_config("smoke", {
        "data.dataset": "synthetic", "data.frame_size": [32, 48], "data.crop_size": [32, 32],
        "data.max_sequences": 2, "data.eval_targets_per_video": 1, "data.window": 5,
        "model.width": 0.25, "model.block_depth": 1, "train.epochs": 1, "train.max_steps_per_epoch": 2,
        "train.batch_size": 2, "train.amp": "off", "train.device": "cpu", "eval.lpips": False,
        "eval.flow_metrics": False, "logging.tensorboard": False, "logging.progress": "off",
        "paths.run_dir": str(tmp_path / "run")})
    fit(cfg)
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    out = tmp_path / "trained.mp4"
    rc = main(["--checkpoint", str(best), "--input", str(clip), "--output", str(out), "--quiet", "--max_frames", "6"])
    assert rc == 0, capsys.readouterr().err
    assert "window 5: 3 pairs, window 3: 2 pairs" in capsys.readouterr().out
    with FrameReader(out) as reader:
        assert reader.info.num_frames == 12 and reader.info.fps == 2 * clip_spec.rate


def test_no_output_may_be_an_input_or_another_output(tmp_path: Path, clip: Path, checkpoint: Path,
                                                     source_frames: list[np.ndarray],
                                                     capsys: pytest.CaptureFixture, write_folder) -> None:
    work = tmp_path / "work"
    work.mkdir()
    video = work / "x.mp4"
    video.write_bytes(clip.read_bytes())
    original = video.read_bytes()
    (work / "link.mp4").symlink_to(video)
    folder = write_folder(tmp_path / "frames", source_frames[:3])
    cases = [
        (video, work / "y.mp4", ["--montage", str(video)], "--montage", "same file as --input"),
        (video, work / "y.mp4", ["--montage", str(work / ".." / "work" / "x.mp4")], "--montage", "same file as --input"),
        (video, work / "link.mp4", [], "--output", "same file as --input"),
        (video, work / "y.mp4", ["--montage", str(work / "y.mp4")], "--output and --montage are the same file", ""),
        (video, checkpoint.with_suffix(".mp4"), ["--montage", str(checkpoint)], "--montage", "--checkpoint"),
        (folder, folder / "out.mp4", [], "--output", "lies inside the --input folder"),
    ]
    for input, output, extra, *needles in cases:
        rc, err = _run_cli(capsys, checkpoint, input, output, *extra)
        _assert_error(rc, err, *needles)
    assert video.read_bytes() == original and sorted(p.name for p in work.iterdir()) == ["link.mp4", "x.mp4"]
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_{i:04d}.png" for i in range(3)]
    with pytest.raises(InterpolateError, match="same file as --input"):
        interpolate_video(torch.nn.Identity(), video, work / "z.mp4", montage=work / "link.mp4")


def test_python_m_lift_interpolate_runs_the_command_line(tmp_path: Path) -> None:
    """`python -m lift.interpolate` runs lift.interpolate.__main__.main: a bad input is one line, exit 2."""
    missing = tmp_path / "missing.mp4"
    proc = subprocess.run([sys.executable, "-m", "lift.interpolate", "--checkpoint", str(tmp_path / "c.pt"),
                           "--input", str(missing), "--output", str(tmp_path / "o.mp4")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: input {missing} does not exist"


def test_the_published_model_interpolates_without_training(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture,
                                                            clip_spec) -> None:
    from lift.model import pretrained  # noqa: PLC0415 (only these tests look the weights up)

    if not pretrained.available() and not os.environ.get("CI"):
        pytest.skip("the published RIFE HD weights are not fetched (make rife-weights)")
    out = tmp_path / "hd.mp4"
    rc = main(["--pretrained", "rife_hd", "--input", str(clip), "--output", str(out), "--max_frames", "3", "--quiet"])
    assert rc == 0 and "3 -> 6 frames" in capsys.readouterr().out
    with FrameReader(out) as reader:
        assert reader.info.num_frames == 6 and reader.info.fps == 2 * clip_spec.rate
    rc = main(["--pretrained", "rife_hd", "--input", str(clip), "--output", str(tmp_path / "x4.mp4"), "--factor", "4",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--factor 4" in err and "middle frame only" in err
    assert not (tmp_path / "x4.mp4").exists()


def test_missing_published_weights_are_one_line(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFT_RIFE_HD_DIR", str(tmp_path / "none"))
    rc = main(["--pretrained", "rife_hd", "--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "make rife-weights" in err


def test_ctrl_c_exits_130_with_one_message_and_no_partial_video(tmp_path: Path, carphone_clip: Path, checkpoint: Path,
                                                               sigint_at) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "slow.mp4"
    cmd = [sys.executable, "-m", "lift.interpolate", "--checkpoint", str(checkpoint), "--input", str(carphone_clip),
           "--output", str(out), "--factor", "8", "--device", "cpu", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    # Interrupted once the encoder has its temporary file: mid-video.
    got = sigint_at(cmd, lambda _: any(out_dir.iterdir()), env=env)
    assert got.signalled, got.stderr[-2000:]
    assert got.returncode == 130, got.stderr[-2000:]
    assert got.stderr.strip() == f"interrupted: {out} was not written (nothing partial is left); run the command again"
    assert list(out_dir.iterdir()) == []
