"""Exact sequential decoding, the frame cache, and every bad-file case of lift.data.decode."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest

from lift.data.decode import (
    STATS,
    BadVideoError,
    cache_key,
    decode_video,
    frame_allowance,
    probe_video,
    read_image,
    usable_frames,
)
from lift.data.sources import ImageSequenceSource, VideoFileSource

from lift.data import build_dataset

from .conftest import H, W, count_b_frames, cut_at_packet, data_cfg, packet_positions, read_code, write_png, write_video


def test_mpeg4_avi_with_b_frames_decodes_in_exact_frame_order(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "v_Test_g01_c01.avi", coded(20), codec="mpeg4", b_frames=2)
    assert count_b_frames(path) >= 5, "the fixture must really contain B-frames"
    frames = decode_video(path)
    assert frames.shape == (20, H, W, 3) and frames.dtype == np.uint8
    assert [read_code(f) for f in frames] == list(range(20))
    assert probe_video(path).declared_frames == 20


def test_h264_mp4_with_b_frames_decodes_in_exact_frame_order(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "clip.mp4", coded(18, start=40), codec="libx264", b_frames=3,
                       options={"crf": "12", "bf": "3"})
    assert count_b_frames(path) >= 3
    assert [read_code(f) for f in decode_video(path)] == list(range(18))


def test_frame_size_resizes_at_decode(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "a.avi", coded(6))
    assert decode_video(path, (24, 40)).shape == (6, 24, 40, 3)
    assert decode_video(path, (96, 128)).shape == (6, 96, 128, 3)


def test_cache_is_written_once_and_hit_afterwards(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "a.avi", coded(12))
    cache = tmp_path / "cache"
    src = VideoFileSource(path, None, str(cache))
    # From the container header, nothing decoded yet: the declared 12 less the allowance of 2.
    assert src.length == 10 == usable_frames(12)
    assert STATS.videos_decoded == 0
    first = src.load([3, 4, 5])
    assert STATS.videos_decoded == 1 and STATS.cache_writes == 1
    assert [read_code(f) for f in first] == [3, 4, 5]
    entries = list(cache.glob("*.npy"))
    assert len(entries) == 1 and not list(cache.glob("*.tmp"))
    again = VideoFileSource(path, None, str(cache))
    assert again.length == 10  # from the cache entry, which holds the usable frames only
    np.testing.assert_array_equal(again.load([3, 4, 5]), first)
    assert STATS.videos_decoded == 1 and STATS.cache_hits >= 1
    # A crop box reads the crop from the memory-mapped entry.
    np.testing.assert_array_equal(again.load([4], box=(8, 16, 20, 24))[0], first[1][8:28, 16:40])


def test_cache_key_covers_mtime_size_and_frame_size(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "a.avi", coded(6))
    key = cache_key([path], None)
    assert cache_key([path], None) == key
    assert cache_key([path], (24, 32)) != key
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_key([path], None) != key
    cache = tmp_path / "cache"
    VideoFileSource(path, None, str(cache)).load([0])
    VideoFileSource(path, (24, 32), str(cache)).load([0])
    assert STATS.videos_decoded == 2 and len(list(cache.glob("*.npy"))) == 2


def test_disabled_cache_decodes_without_writing(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "a.avi", coded(8))
    src = VideoFileSource(path, None, None)
    assert [read_code(f) for f in src.load([5, 0])] == [5, 0]
    assert STATS.cache_writes == 0


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00AVI garbage" * 20, b"\x00\x01not a video" * 50])
def test_unopenable_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.avi"
    path.write_bytes(content)
    with pytest.raises(BadVideoError, match=r"broken.avi: (cannot be opened|contains no video stream)") as info:
        decode_video(path)
    assert info.value.path == str(path)
    with pytest.raises(BadVideoError, match="broken.avi"):
        VideoFileSource(path, None, None).length


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadVideoError, match="missing.avi: does not exist"):
        probe_video(tmp_path / "missing.avi")


def test_truncated_video_is_detected(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "full.avi", coded(20))
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    # Cut at a packet boundary: every remaining packet decodes cleanly, only the count betrays it.
    cut.write_bytes(data[: packet_positions(path)[12]])
    assert probe_video(cut).declared_frames == 20  # the header still promises 20
    with pytest.raises(BadVideoError, match=r"cut.avi: the container declares 20 frames but only 12 could be decoded "
                                            r"\(truncated or damaged file; up to 2 missing frames are accepted\)"):
        decode_video(cut)
    src = VideoFileSource(cut, None, str(tmp_path / "cache"))
    assert src.length == 18
    with pytest.raises(BadVideoError, match="cut.avi"):
        src.load([0])
    assert not list((tmp_path / "cache").glob("*.npy")), "a bad video must not be cached"
    # Cut inside a packet: the decoder sees a damaged frame.
    cut.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(BadVideoError, match="cut.avi"):
        decode_video(cut)


def _h264_mp4(path: Path, coded, frames: int, keep: int) -> Path:
    """A real h264 MP4 with its index at the front, cut after `keep` packets: the index still
    declares every frame, the rest decodes cleanly (as in MP4s that declare a frame too many)."""
    write_video(path, coded(frames), codec="libx264", b_frames=0, options={"crf": "12", "bf": "0"},
                container_options={"movflags": "faststart"})
    return cut_at_packet(path, keep) if keep < frames else path


def test_an_mp4_declaring_one_frame_more_than_it_decodes_is_accepted(tmp_path: Path, coded) -> None:
    path = _h264_mp4(tmp_path / "short.mp4", coded, 24, keep=23)
    assert probe_video(path).declared_frames == 24
    frames = decode_video(path)
    assert [read_code(f) for f in frames] == list(range(23))
    assert decode_video(path, usable_only=True).shape[0] == usable_frames(24) == 22
    for cache in (str(tmp_path / "cache"), None):
        from_header = VideoFileSource(path, None, cache)
        assert from_header.length == 22  # the header alone: nothing decoded yet
        first = from_header.load(range(22))
        again = VideoFileSource(path, None, cache)  # from the cache entry when the cache is on
        assert again.length == 22
        np.testing.assert_array_equal(again.load(range(22)), first)
        assert [read_code(f) for f in first] == list(range(22))


def test_sample_ids_do_not_depend_on_the_frame_cache(tmp_path: Path, coded) -> None:
    root = tmp_path / "videos"
    _h264_mp4(root / "short.mp4", coded, 24, keep=23)
    _h264_mp4(root / "exact.mp4", coded, 24, keep=24)
    cfg = data_cfg(tmp_path, data_root=str(root), eval_targets_per_video=30)
    before = build_dataset(cfg, "all", train=False)  # lengths from the headers
    ids = before.sample_ids
    targets = [before[i]["target"] for i in range(len(before))]  # decodes and fills the cache
    decoded = STATS.videos_decoded
    after = build_dataset(cfg, "all", train=False)  # lengths from the cache entries
    assert after.sample_ids == ids and len(ids) == 2 * 20  # targets 1..20 of the 22 usable frames
    for i, target in enumerate(targets):
        assert after[i]["target"].equal(target)
    assert STATS.videos_decoded == decoded and STATS.cache_hits > 0


def test_a_truncated_mp4_is_refused(tmp_path: Path, coded) -> None:
    path = _h264_mp4(tmp_path / "cut.mp4", coded, 24, keep=10)
    with pytest.raises(BadVideoError, match=r"cut.mp4: the container declares 24 frames but only 10 could be decoded "
                                            r"\(truncated or damaged file; up to 2 missing frames are accepted\)"):
        decode_video(path)
    # At the limit: 2 missing frames are accepted, 3 are not.
    assert decode_video(_h264_mp4(tmp_path / "two.mp4", coded, 24, keep=22)).shape[0] == 22
    with pytest.raises(BadVideoError, match="only 21 could be decoded"):
        decode_video(_h264_mp4(tmp_path / "three.mp4", coded, 24, keep=21))


def test_the_allowance_is_two_frames_or_one_percent() -> None:
    assert [frame_allowance(n) for n in (1, 24, 199, 200, 456, 10_000)] == [2, 2, 2, 2, 4, 100]
    assert [usable_frames(n) for n in (1, 3, 24, 456)] == [1, 1, 22, 452]


def test_damaged_data_midway_is_detected(tmp_path: Path, coded) -> None:
    path = write_video(tmp_path / "full.avi", coded(20))
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.pos is not None]
    # Overwrite half of the payload of a P-frame in the middle of the stream with noise.
    pos, size = packets[10]
    start = pos + 8 + size // 4
    data[start:start + size // 2] = np.random.default_rng(0).integers(0, 256, size // 2, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.avi"
    bad.write_bytes(bytes(data))
    with pytest.raises(BadVideoError, match="damaged.avi"):
        decode_video(bad)


def test_frame_size_change_inside_a_video(tmp_path: Path, coded) -> None:
    frames = coded(12)
    a = write_video(tmp_path / "a.m4v", frames[:6], b_frames=0, fmt="m4v")
    b = write_video(tmp_path / "b.m4v", [np.ascontiguousarray(f[:32, :48]) for f in frames[6:]], b_frames=0, fmt="m4v")
    joined = tmp_path / "joined.m4v"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with pytest.raises(BadVideoError, match=r"joined.m4v: frame 6 is 48x32 but frame 0 is 64x48"):
        decode_video(joined)


def test_grayscale_video_is_converted_with_a_warning(tmp_path: Path, coded, caplog) -> None:
    gray = [np.ascontiguousarray(f[..., 1]) for f in coded(6)]
    path = write_video(tmp_path / "gray.mkv", gray, codec="ffv1", b_frames=0, pix_fmt="gray", input_format="gray")
    with caplog.at_level(logging.WARNING, logger="lift.data.decode"):
        frames = decode_video(path)
    assert frames.shape == (6, H, W, 3)
    np.testing.assert_array_equal(frames[..., 0], frames[..., 2])
    np.testing.assert_array_equal(frames[..., 0], np.stack(gray))  # lossless codec: exact values
    assert any("gray.mkv" in r.message and "grayscale" in r.message for r in caplog.records)
    # mkv declares no frame count: the length comes from a full decode.
    assert probe_video(path).declared_frames == 0
    assert VideoFileSource(path, None, None).length == 6


def test_grayscale_image_is_converted_with_a_warning(tmp_path: Path, coded, caplog) -> None:
    path = write_png(tmp_path / "g.png", coded(1)[0][..., 0])
    with caplog.at_level(logging.WARNING, logger="lift.data.decode"):
        arr = read_image(path)
    assert arr.shape == (H, W, 3)
    np.testing.assert_array_equal(arr[..., 0], arr[..., 1])
    assert any("g.png" in r.message and "grayscale" in r.message for r in caplog.records)


def test_image_size_change_and_unreadable_image(tmp_path: Path, coded) -> None:
    frames = coded(3)
    files = [write_png(tmp_path / "seq" / f"{i}.png", f) for i, f in enumerate(frames)]
    write_png(files[2], np.ascontiguousarray(frames[2][:40]))
    src = ImageSequenceSource(files, None, None)
    assert [read_code(f) for f in src.load([0, 1])] == [0, 1]
    with pytest.raises(BadVideoError, match=r"2.png: frame is 64x40 but the sequence's first frame is 64x48"):
        src.load([2])
    with pytest.raises(BadVideoError, match="2.png"):
        src.validate()
    files[1].write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(BadVideoError, match="1.png: cannot be read as an image"):
        src.load([1])


def test_resized_image_sequences_are_cached(tmp_path: Path, coded) -> None:
    files = [write_png(tmp_path / "seq" / f"{i}.png", f) for i, f in enumerate(coded(4))]
    src = ImageSequenceSource(files, (24, 32), str(tmp_path / "cache"))
    assert src.load([1, 2]).shape == (2, 24, 32, 3)
    assert STATS.images_read == 4 and STATS.cache_writes == 1
    again = ImageSequenceSource(files, (24, 32), str(tmp_path / "cache"))
    again.load([0, 3])
    assert STATS.images_read == 4
    native = ImageSequenceSource(files, None, str(tmp_path / "cache"))
    assert [read_code(f) for f in native.load([3, 1])] == [3, 1]
    assert STATS.cache_writes == 1, "native-size image sequences are read directly unless prepared"


def test_open_memory_maps_are_bounded(tmp_path: Path, coded, monkeypatch) -> None:
    from lift.data.decode import MAPS

    monkeypatch.setattr(MAPS, "capacity", 2)
    MAPS.clear()
    sources = [VideoFileSource(write_video(tmp_path / f"v{k}.avi", coded(6, start=k)), None, str(tmp_path / "c"))
               for k in range(5)]
    for _ in range(2):
        for src in sources:
            assert [read_code(f) for f in src.load([3, 1])] == [3, 1]
            assert len(MAPS) <= 2
    assert STATS.videos_decoded == 5
    MAPS.clear()


def test_lru_drops_the_least_recently_used_entry() -> None:
    from lift.data.decode import LRU

    lru: LRU[str, int] = LRU(capacity=2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    lru.forget("a")
    assert lru.get("a") is None and len(lru) == 1
