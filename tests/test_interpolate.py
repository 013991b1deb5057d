"""Interpolating real footage with a tiny LIFT checkpoint: schedule, streaming, audio, errors.

The clip is the first 12 frames of the bundled carphone_pristine.mp4, cropped to 120x168 (not a
multiple of the network's size multiple, so padding and cropping run) and re-encoded as h264 at
30000/1001 fps with a synthesized 440 Hz AAC track. The checkpoint is an untrained width-0.25
window-7 network in lift.train's checkpoint format: the tests check the video plumbing, not
picture quality.

Frame-count convention under test: n input frames -> factor*n output frames (the last input
frame is held), so frame rate x factor and the duration is unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import lift.interpolate
from lift.config import Config
from lift.interpolate import (InterpolateError, buffer_capacity, interpolate_video, load_model, mirror_index,
                              output_frame_count, pair_inputs, references_for_pair)
from lift.interpolate_cli import main
from lift.window import WindowSpec
from lift.model import build_model
from lift.video_io import FrameReader, VideoWriter, read_video_rgb

N_FRAMES = 12
HEIGHT, WIDTH = 120, 168
RATE = Fraction(30000, 1001)
SAMPLE_RATE = 44100


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _write_clip(path: Path, frames: list[np.ndarray], rate: Fraction, audio: bool) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        if sound is not None:
            t = np.arange(int(SAMPLE_RATE * len(frames) / rate)) / SAMPLE_RATE
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(wave), 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def source_frames(carphone_clip: Path) -> list[np.ndarray]:
    frames, _ = read_video_rgb(carphone_clip, max_frames=N_FRAMES)
    return [np.ascontiguousarray(f[:HEIGHT, :WIDTH]) for f in frames]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, source_frames: list[np.ndarray]) -> Path:
    path = tmp_path_factory.mktemp("clip") / "carphone12.mp4"
    _write_clip(path, source_frames, RATE, audio=True)
    return path


def _save_checkpoint(path: Path, window: int, width: float = 0.25, config_window: int | None = None,
                     config_width: float | None = None) -> Path:
    """A checkpoint in lift.train's format; config_* can lie about the weights (foreign architecture)."""
    cfg = Config()
    cfg.model.width, cfg.model.block_depth = width, 2
    cfg.data.window = window
    torch.manual_seed(0)
    model = build_model(cfg.model, window)
    cfg.data.window = config_window or window
    cfg.model.width = config_width or width
    torch.save({"format": "lift-checkpoint/1", "model": model.state_dict(), "config": cfg.to_dict(),
                "epoch": 0, "step": 0}, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_w7.pt", window=7)


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> torch.nn.Module:
    net, cfg = load_model(checkpoint, "cpu")
    assert cfg.data.window == 7 and net.window == 7
    return net


# ---------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("window,offset", [(3, 1), (7, 1), (15, 2)])
def test_pair_inputs_follow_the_window_order(window: int, offset: int) -> None:
    """Same input order as WindowSpec; with the anchors one frame apart, times equal offsets."""
    refs = (window - 3) // 2
    indices, times = pair_inputs(10, refs, offset)
    # A WindowSpec with gap 2 and offset 2*d has the same geometry at twice the scale.
    spec = WindowSpec(window=window, temporal_offset=2 * offset, gap=2)
    expected = [(o + 1) // 2 + 10 for o in spec.input_offsets(1)]
    assert indices == expected
    assert times == [float(i - 10) for i in indices]
    assert len(indices) == window - 1


def test_references_shrink_to_the_largest_window_that_fits() -> None:
    n, refs = 12, 2
    per_pair = [references_for_pair(p, n, refs, 1) for p in range(n - 1)]
    assert per_pair == [0, 1, 2, 2, 2, 2, 2, 2, 2, 1, 0]
    assert [references_for_pair(p, 12, 2, 2) for p in range(11)] == [0, 0, 1, 1, 2, 2, 2, 1, 1, 0, 0]
    # The end not known yet: only the left side limits.
    assert references_for_pair(5, None, 3, 1) == 3
    for p, k in enumerate(per_pair):
        indices, _ = pair_inputs(p, k, 1)
        assert min(indices) >= 0 and max(indices) <= n - 1


def test_mirror_index_reflects_into_the_video() -> None:
    assert [mirror_index(i, 5) for i in range(-3, 8)] == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    assert mirror_index(-9, 3) in range(3)


def test_frame_count_and_buffer_capacity() -> None:
    assert output_frame_count(12, 2) == 24
    assert output_frame_count(12, 8) == 96
    assert buffer_capacity(3, 1, 1) == 2
    assert buffer_capacity(15, 2, 4) == 2 + 2 * 12 + 3


# ---------------------------------------------------------------------------------------------
# End-to-end on real footage
# ---------------------------------------------------------------------------------------------

def test_doubles_frame_rate_of_a_real_clip_and_copies_audio(tmp_path: Path, clip: Path, model: torch.nn.Module,
                                                             source_frames: list[np.ndarray]) -> None:
    out = tmp_path / "double.mp4"
    result = interpolate_video(model, clip, out, factor=2, progress=False)

    decoded_in, rate_in = read_video_rgb(clip)
    decoded_out, rate_out = read_video_rgb(out)
    assert rate_in == RATE and rate_out == 2 * RATE  # exact fractions
    assert len(decoded_out) == result.output_frames == 2 * N_FRAMES
    assert decoded_out.shape[1:] == (HEIGHT, WIDTH, 3)  # padded for the network, cropped back
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        vin, vout = a.streams.video[0], b.streams.video[0]
        assert vout.codec_context.name == "h264"
        # Same duration: N frames at 30000/1001 fps == 2N frames at 60000/1001 fps.
        assert vout.duration * vout.time_base == vin.duration * vin.time_base == Fraction(N_FRAMES) / RATE
        assert len(b.streams.audio) == 1 and b.streams.audio[0].codec_context.name == "aac"
    # Audio remuxed, not re-encoded: same packets, same timestamps.
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        pin = [(p.pts, bytes(p)) for p in a.demux(audio=0) if p.size]
        pout = [(p.pts, bytes(p)) for p in b.demux(audio=0) if p.size]
    assert pin and pin == pout
    assert result.audio_streams == 1 and result.audio_packets == len(pin)

    # Originals pass through at even indices within codec tolerance (lossy x264 crf 18 re-encode).
    for i in range(N_FRAMES):
        assert _psnr(decoded_out[2 * i], decoded_in[i]) > 30.0
    # The last input frame is held: the final two output frames both show it.
    assert _psnr(decoded_out[-1], decoded_in[-1]) > 30.0
    # Interpolated frames are new pictures between their anchors.
    mid = decoded_out[7].astype(np.float64)
    assert 0 < np.abs(mid - decoded_out[6]).mean() and 0 < np.abs(mid - decoded_out[8]).mean()

    # Window 7 (2 references per side) with edge shrinking on 11 anchor pairs.
    assert result.windows_used == {7: 7, 5: 2, 3: 2}
    assert result.input_frames == N_FRAMES and result.output_fps == 2 * RATE
    assert result.peak_buffered_frames <= result.buffer_capacity == 6 < N_FRAMES


def test_lossless_originals_are_bit_exact_and_runs_are_deterministic(tmp_path: Path, clip: Path,
                                                                     model: torch.nn.Module) -> None:
    outs = [tmp_path / f"run{i}.mp4" for i in range(2)]
    for out in outs:
        res = interpolate_video(model, clip, out, factor=2, progress=False, lossless=True, deterministic=True,
                                batch_size=2)
        assert res.encoder == "libx264" and res.pix_fmt == "yuv420p"
    assert outs[0].read_bytes() == outs[1].read_bytes()

    decoded_in, _ = read_video_rgb(clip)
    decoded_out, rate = read_video_rgb(outs[0])
    assert rate == 2 * RATE and len(decoded_out) == 2 * N_FRAMES
    for i in range(N_FRAMES):
        np.testing.assert_array_equal(decoded_out[2 * i], decoded_in[i])
    np.testing.assert_array_equal(decoded_out[-1], decoded_in[-1])  # the held last frame
    with av.open(str(outs[0])) as c, av.open(str(clip)) as src:
        ours = [c.streams.video[0].codec_context.pix_fmt]
        # Even the YUV planes are the input's (originals are re-encoded from their own pixels).
        fin = next(src.decode(video=0))
        fout = next(c.decode(video=0))
        for p_in, p_out in zip(fin.planes, fout.planes):
            np.testing.assert_array_equal(np.frombuffer(p_in, np.uint8).reshape(p_in.height, -1)[:, :p_in.width],
                                          np.frombuffer(p_out, np.uint8).reshape(p_out.height, -1)[:, :p_out.width])
    assert ours == ["yuv420p"]


def test_ffv1_lossless_in_mkv_and_decoded_frames_identical_without_deterministic(
        tmp_path: Path, clip: Path, model: torch.nn.Module) -> None:
    runs = []
    for i in range(2):
        res = interpolate_video(model, clip, tmp_path / f"r{i}.mkv", progress=False, lossless=True, audio=False)
        assert res.encoder == "ffv1" and res.audio_streams == 0
        runs.append(read_video_rgb(tmp_path / f"r{i}.mkv")[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    decoded_in, _ = read_video_rgb(clip)
    np.testing.assert_array_equal(runs[0][::2], decoded_in)


def _write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir()
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(folder / f"frame_{i:04d}.png")
    return folder


@pytest.mark.parametrize("length", [8, 20])
def test_frame_folder_streams_with_a_bounded_buffer(tmp_path: Path, model: torch.nn.Module,
                                                    source_frames: list[np.ndarray], length: int) -> None:
    """Odd frame size, factor 4, two pairs per batch, mirrored edges: the buffer never exceeds the
    window span plus one extra pair, however long the input."""
    frames = [np.ascontiguousarray(source_frames[i % N_FRAMES][:45, :61]) for i in range(length)]
    folder = _write_folder(tmp_path / "frames", frames)
    out = tmp_path / "folder.mp4"
    result = interpolate_video(model, folder, out, factor=4, edge="mirror", batch_size=6, lossless=True,
                               fps=Fraction(24), progress=False)
    assert result.buffer_capacity == buffer_capacity(7, 1, 2) == 7
    assert result.peak_buffered_frames == 7
    assert result.windows_used == {7: length - 1}  # mirror keeps the full window everywhere
    decoded, rate = read_video_rgb(out)
    assert rate == 96 and len(decoded) == 4 * length and decoded.shape[1:] == (45, 61, 3)
    assert result.encoder == "libx264rgb"
    for i in range(length):  # RGB source, lossless RGB encoder: exact
        np.testing.assert_array_equal(decoded[4 * i], frames[i])


def test_montage_shows_input_and_output_side_by_side(tmp_path: Path, clip: Path, model: torch.nn.Module) -> None:
    out = tmp_path / "m.mp4"
    result = interpolate_video(model, clip, out, factor=2, montage=True, window=3, progress=False, lossless=True)
    assert result.montage == tmp_path / "m.montage.mp4"
    assert result.windows_used == {3: N_FRAMES - 1}
    montage, rate = read_video_rgb(result.montage)
    output, _ = read_video_rgb(out)
    decoded_in, _ = read_video_rgb(clip)
    assert rate == 2 * RATE and montage.shape == (2 * N_FRAMES, HEIGHT, 2 * WIDTH, 3)
    for j in range(2 * N_FRAMES):
        # Left: the input frame held until the next one; right: the output frame. The montage is
        # encoded from RGB (lossless libx264rgb), the output in the source's yuv420p: predicted
        # frames differ by the output's chroma subsampling only.
        np.testing.assert_array_equal(montage[j, :, :WIDTH], decoded_in[min(j // 2, N_FRAMES - 1)])
        if j % 2 == 0:
            np.testing.assert_array_equal(montage[j, :, WIDTH:], output[j])
        else:
            assert _psnr(montage[j, :, WIDTH:], output[j]) > 35.0


def test_cli_writes_the_video(tmp_path: Path, clip: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli.mp4"
    rc = main(["--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(out), "--factor", "8",
               "--max_frames", "3", "--quiet"])
    assert rc == 0
    assert "3 -> 24 frames" in capsys.readouterr().out
    with FrameReader(out) as reader:
        assert reader.info.fps == 8 * RATE and reader.info.num_frames == 24 and reader.info.audio_streams == 1
    # A preview of the first 3 frames keeps only the audio of those 3 frames.
    with av.open(str(out)) as c, av.open(str(clip)) as src:
        times = [p.pts * p.time_base for p in c.demux(audio=0) if p.size]
        total = sum(1 for p in src.demux(audio=0) if p.size)
    assert 0 < len(times) < total and max(times) < Fraction(3) / RATE
    rc = main(["--checkpoint", str(checkpoint), "--input", str(clip), "--output", str(out), "--max_frames", "2",
               "--quiet", "--no_audio"])
    with FrameReader(out) as reader:
        assert rc == 0 and reader.info.num_frames == 4 and reader.info.audio_streams == 0


def test_failed_run_leaves_no_partial_output(tmp_path: Path, clip: Path, model: torch.nn.Module) -> None:
    class Failing(torch.nn.Module):
        """Fails on the third forward, as an out-of-memory error would mid-video."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner, self.window, self.size_multiple, self.calls = inner, inner.window, inner.size_multiple, 0

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, dict]:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("simulated failure")
            return self.inner(*args)

    out = tmp_path / "fail.mp4"
    with pytest.raises(RuntimeError, match="simulated failure"):
        interpolate_video(Failing(model), clip, out, progress=False, montage=True)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_fixture_is_in_lift_train_format(checkpoint: Path) -> None:
    from lift.checkpoint import model_from_checkpoint

    net, cfg = model_from_checkpoint(checkpoint, "cpu")
    assert cfg.data.window == 7 and net.window == 7


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line on stderr, exit code 2, nothing written
# ---------------------------------------------------------------------------------------------

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


def test_error_no_video_stream(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    audio_only = tmp_path / "sound.m4a"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = SAMPLE_RATE, 0
        for packet in list(stream.encode(chunk)) + list(stream.encode(None)):
            out.mux(packet)
    rc, err = _run_cli(capsys, checkpoint, audio_only, tmp_path / "o.mp4")
    _assert_error(rc, err, "has no video stream", "audio aac")


def test_error_checkpoint_of_another_architecture(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture) -> None:
    # Weights of a window-3 network under a config that says window 7: the reference path is missing.
    lying = _save_checkpoint(tmp_path / "w3_as_w7.pt", window=3, config_window=7)
    rc, err = _run_cli(capsys, lying, clip, tmp_path / "o.mp4")
    _assert_error(rc, err, str(lying), "does not match", "missing", "window=7")
    missing = int(err.split(" missing")[0].rsplit(" ", 1)[-1])
    assert missing > 0
    # Same window, other width: every conv is reshaped.
    wide = _save_checkpoint(tmp_path / "wide.pt", window=7, width=0.5, config_width=0.25)
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
                                             source_frames: list[np.ndarray], capsys: pytest.CaptureFixture) -> None:
    folder = _write_folder(tmp_path / "one", source_frames[:1])
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


def test_checkpoint_from_a_real_training_run(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture) -> None:
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
        assert reader.info.num_frames == 12 and reader.info.fps == 2 * RATE


def test_no_output_may_be_an_input_or_another_output(tmp_path: Path, clip: Path, checkpoint: Path,
                                                     source_frames: list[np.ndarray],
                                                     capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "work"
    work.mkdir()
    video = work / "x.mp4"
    video.write_bytes(clip.read_bytes())
    original = video.read_bytes()
    (work / "link.mp4").symlink_to(video)
    folder = _write_folder(tmp_path / "frames", source_frames[:3])
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


def test_montage_and_output_write_through_their_own_temporaries(tmp_path: Path, clip: Path, model: torch.nn.Module,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    writers = []

    class Recording(VideoWriter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            writers.append(self._tmp)

    monkeypatch.setattr(lift.interpolate, "VideoWriter", Recording)
    result = interpolate_video(model, clip, tmp_path / "o.mp4", montage=True, window=3, progress=False, max_frames=3)
    assert len(set(writers)) == 2 and all(w.parent == tmp_path for w in writers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.montage.mp4", "o.mp4"] and result.output_frames == 6


def test_python_m_lift_interpolate_runs_the_command_line(tmp_path: Path) -> None:
    """`python -m lift.interpolate` runs lift.interpolate_cli.main: a bad input is one line, exit 2."""
    missing = tmp_path / "missing.mp4"
    proc = subprocess.run([sys.executable, "-m", "lift.interpolate", "--checkpoint", str(tmp_path / "c.pt"),
                           "--input", str(missing), "--output", str(tmp_path / "o.mp4")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: input {missing} does not exist"
