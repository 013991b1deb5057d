"""lift.video_io: streaming reads of a video or a frame folder, encoder choice, atomic writes with copied audio.

The clip (h264 + AAC, 12 frames at 30000/1001 fps) and the frame-folder writer are fixtures of tests/conftest.py.
"""

from __future__ import annotations

import stat
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lift.atomic import current_umask
from lift.video_io import FrameReader, VideoIOError, VideoWriter, check_writable, choose_encoder, read_video_rgb


def test_reader_announces_the_clip_and_yields_its_frames_in_order(clip: Path, clip_spec,
                                                                  source_frames: list[np.ndarray]) -> None:
    with FrameReader(clip) as reader:
        info = reader.info
        frames = list(reader)
    assert (info.kind, info.codec, info.pix_fmt) == ("video", "h264", "yuv420p")
    assert (info.width, info.height, info.fps) == (clip_spec.width, clip_spec.height, clip_spec.rate)
    assert info.num_frames == clip_spec.frames and info.audio_streams == 1
    assert [f.index for f in frames] == list(range(clip_spec.frames))
    assert frames[0].rgb.shape == (clip_spec.height, clip_spec.width, 3) and frames[0].rgb.dtype == np.uint8
    # Lossy h264 of the source frames, in decoding order: each decoded frame is nearest to its own source.
    for item in frames:
        errors = [np.abs(item.rgb.astype(float) - src).mean() for src in source_frames]
        assert int(np.argmin(errors)) == item.index


def test_frame_folder_reads_exactly_in_name_order_at_the_given_rate(tmp_path: Path, write_folder,
                                                                    source_frames: list[np.ndarray]) -> None:
    folder = write_folder(tmp_path / "frames", source_frames[:4])
    with FrameReader(folder, fps=Fraction(24)) as reader:
        assert (reader.info.kind, reader.info.num_frames, reader.info.fps, reader.info.pix_fmt) == \
            ("frames", 4, 24, "rgb24")
        for item, expected in zip(reader, source_frames[:4], strict=True):
            np.testing.assert_array_equal(item.rgb, expected)
    frames, rate = read_video_rgb(folder, max_frames=2)
    assert rate == 25 and frames.shape == (2, *source_frames[0].shape)  # folders default to 25 fps


def test_reader_errors_name_the_path_and_the_reason(tmp_path: Path, write_folder,
                                                     source_frames: list[np.ndarray]) -> None:
    with pytest.raises(VideoIOError, match="does not exist"):
        FrameReader(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    with pytest.raises(VideoIOError, match=f"cannot read video {broken}"):
        FrameReader(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoIOError, match="holds no images"):
        FrameReader(tmp_path / "empty")
    folder = write_folder(tmp_path / "mixed", [source_frames[0], source_frames[1][:40, :50]])
    with pytest.raises(VideoIOError, match="frame_0001.png is 50x40, but frame_0000.png is 168x120"):
        list(FrameReader(folder))


def test_encoder_follows_the_source_family_and_lossless_keeps_the_pixels() -> None:
    assert choose_encoder("h264", "yuv420p", "o.mp4").codec == "libx264"
    assert choose_encoder("h264", "yuv420p", "o.mp4", width=61, height=45).pix_fmt == "yuv444p"  # odd size
    assert choose_encoder("mpeg4", "yuv420p", "o.avi").codec == "mpeg4"
    assert choose_encoder("h264", "yuv420p", "o.mkv", lossless=True).codec == "ffv1"
    rgb = choose_encoder(None, "rgb24", "o.mp4", lossless=True)
    assert (rgb.codec, rgb.pix_fmt, rgb.options["qp"]) == ("libx264rgb", "rgb24", "0")
    assert choose_encoder("h264", "yuv420p", "o.mp4", deterministic=True).options["threads"] == "1"


def test_check_writable_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "o.mp4") == tmp_path / "o.mp4"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    for bad, reason in [(tmp_path, "is a directory"), (tmp_path / "o", "has no file extension"),
                        (tmp_path / "nope" / "o.mp4", "does not exist")]:
        with pytest.raises(VideoIOError, match=reason):
            check_writable(bad)


def test_writer_is_lossless_atomic_and_copies_audio(tmp_path: Path, clip: Path, clip_spec,
                                                    source_frames: list[np.ndarray]) -> None:
    out = tmp_path / "copy.mp4"
    frames = source_frames[:4]
    encoder = choose_encoder(None, "rgb24", out, lossless=True)
    writer = VideoWriter(out, clip_spec.rate, clip_spec.width, clip_spec.height, encoder, audio_source=clip)
    for rgb in frames:
        writer.write(rgb)
    assert not out.exists()  # nothing under the final name until close()
    with pytest.raises(ValueError, match=r"expected a uint8 RGB array of shape \(120, 168, 3\)"):
        writer.write(frames[0][:10])
    audio_end = float(len(frames) / clip_spec.rate)
    assert writer.close(audio_end_s=audio_end) == out
    decoded, rate = read_video_rgb(out)
    assert rate == clip_spec.rate
    np.testing.assert_array_equal(decoded, np.stack(frames))
    with av.open(str(out)) as container:
        times = [float(p.pts * p.time_base) for p in container.demux(audio=0) if p.size]
    assert writer.audio_streams == 1 and len(times) == writer.audio_packets > 0 and max(times) < audio_end
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~current_umask()  # not mkstemp's 0600

    aborted = VideoWriter(tmp_path / "aborted.mp4", clip_spec.rate, clip_spec.width, clip_spec.height, encoder)
    aborted.write(frames[0])
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4"]
