"""Interpolating real footage with a tiny LIFT checkpoint: schedule, streaming, audio.

The clip (clip_spec: the first 12 frames of the bundled carphone_pristine.mp4, cropped to 120x168,
h264 at 30000/1001 fps with an AAC track) and the untrained window-7 checkpoint are the fixtures of
tests/conftest.py. The command line and its bad-input errors: tests/interpolate/test_main.py.

Frame-count convention under test: n input frames -> factor*n output frames (the last input
frame is held), so frame rate x factor and the duration is unchanged.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import lift.interpolate
from lift.interpolate import (buffer_capacity, interpolate_video, mirror_index, output_frame_count, pair_inputs,
                              references_for_pair)
from lift.video_io import VideoWriter, read_video_rgb
from lift.window import WindowSpec


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


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
                                                             source_frames: list[np.ndarray], clip_spec) -> None:
    out = tmp_path / "double.mp4"
    result = interpolate_video(model, clip, out, factor=2, progress=False)

    decoded_in, rate_in = read_video_rgb(clip)
    decoded_out, rate_out = read_video_rgb(out)
    assert rate_in == clip_spec.rate and rate_out == 2 * clip_spec.rate  # exact fractions
    assert len(decoded_out) == result.output_frames == 2 * clip_spec.frames
    assert decoded_out.shape[1:] == (clip_spec.height, clip_spec.width, 3)  # padded for the network, cropped back
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        vin, vout = a.streams.video[0], b.streams.video[0]
        assert vout.codec_context.name == "h264"
        # Same duration: N frames at 30000/1001 fps == 2N frames at 60000/1001 fps.
        assert (vout.duration * vout.time_base == vin.duration * vin.time_base
                == Fraction(clip_spec.frames) / clip_spec.rate)
        assert len(b.streams.audio) == 1 and b.streams.audio[0].codec_context.name == "aac"
    # Audio remuxed, not re-encoded: same packets, same timestamps.
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        pin = [(p.pts, bytes(p)) for p in a.demux(audio=0) if p.size]
        pout = [(p.pts, bytes(p)) for p in b.demux(audio=0) if p.size]
    assert pin and pin == pout
    assert result.audio_streams == 1 and result.audio_packets == len(pin)

    # Originals pass through at even indices within codec tolerance (lossy x264 crf 18 re-encode).
    for i in range(clip_spec.frames):
        assert _psnr(decoded_out[2 * i], decoded_in[i]) > 30.0
    # The last input frame is held: the final two output frames both show it.
    assert _psnr(decoded_out[-1], decoded_in[-1]) > 30.0
    # Interpolated frames are new pictures between their anchors.
    mid = decoded_out[7].astype(np.float64)
    assert 0 < np.abs(mid - decoded_out[6]).mean() and 0 < np.abs(mid - decoded_out[8]).mean()

    # Window 7 (2 references per side) with edge shrinking on 11 anchor pairs.
    assert result.windows_used == {7: 7, 5: 2, 3: 2}
    assert result.input_frames == clip_spec.frames and result.output_fps == 2 * clip_spec.rate
    assert result.peak_buffered_frames <= result.buffer_capacity == 6 < clip_spec.frames


def test_lossless_originals_are_bit_exact_and_runs_are_deterministic(tmp_path: Path, clip: Path,
                                                                     model: torch.nn.Module, clip_spec) -> None:
    outs = [tmp_path / f"run{i}.mp4" for i in range(2)]
    for out in outs:
        res = interpolate_video(model, clip, out, factor=2, progress=False, lossless=True, deterministic=True,
                                batch_size=2)
        assert res.encoder == "libx264" and res.pix_fmt == "yuv420p"
    assert outs[0].read_bytes() == outs[1].read_bytes()

    decoded_in, _ = read_video_rgb(clip)
    decoded_out, rate = read_video_rgb(outs[0])
    assert rate == 2 * clip_spec.rate and len(decoded_out) == 2 * clip_spec.frames
    for i in range(clip_spec.frames):
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


@pytest.mark.parametrize("length", [8, 20])
def test_frame_folder_streams_with_a_bounded_buffer(tmp_path: Path, model: torch.nn.Module,
                                                    source_frames: list[np.ndarray], length: int, clip_spec,
                                                    write_folder) -> None:
    """Odd frame size, factor 4, two pairs per batch, mirrored edges: the buffer never exceeds the
    window span plus one extra pair, however long the input."""
    frames = [np.ascontiguousarray(source_frames[i % clip_spec.frames][:45, :61]) for i in range(length)]
    folder = write_folder(tmp_path / "frames", frames)
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


def test_montage_shows_input_and_output_side_by_side(tmp_path: Path, clip: Path, model: torch.nn.Module,
                                                     clip_spec) -> None:
    out = tmp_path / "m.mp4"
    result = interpolate_video(model, clip, out, factor=2, montage=True, window=3, progress=False, lossless=True)
    assert result.montage == tmp_path / "m.montage.mp4"
    assert result.windows_used == {3: clip_spec.frames - 1}
    montage, rate = read_video_rgb(result.montage)
    output, _ = read_video_rgb(out)
    decoded_in, _ = read_video_rgb(clip)
    assert rate == 2 * clip_spec.rate
    assert montage.shape == (2 * clip_spec.frames, clip_spec.height, 2 * clip_spec.width, 3)
    for j in range(2 * clip_spec.frames):
        # Left: the input frame held until the next one; right: the output frame. The montage is
        # encoded from RGB (lossless libx264rgb), the output in the source's yuv420p: predicted
        # frames differ by the output's chroma subsampling only.
        np.testing.assert_array_equal(montage[j, :, :clip_spec.width], decoded_in[min(j // 2, clip_spec.frames - 1)])
        if j % 2 == 0:
            np.testing.assert_array_equal(montage[j, :, clip_spec.width:], output[j])
        else:
            assert _psnr(montage[j, :, clip_spec.width:], output[j]) > 35.0


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


