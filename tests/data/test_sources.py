"""lift.data.sources: frame sources of generated videos and frame folders (frames, length, crops, segments,
pickling into DataLoader workers) and the Sequence's cluster id.

Frames are real footage with their index painted in (conftest.coded), so every loaded frame tells which
source frame it is.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from lift.data.decode import BadVideoError
from lift.data.sources import ImageSequenceSource, SegmentSource, Sequence, VideoFileSource

from .conftest import H, W, read_code, write_png, write_video


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    """An MPEG-4 AVI with B-frames: 30 coded frames."""
    return write_video(tmp_path_factory.mktemp("sources") / "coded.avi", coded(30))


@pytest.fixture(scope="module")
def coded_folder(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    root = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(coded(12)):
        write_png(root / f"{i:04d}.png", frame)
    return root


@pytest.mark.parametrize("cache", [False, True], ids=["memory", "disk_cache"])
def test_video_source_has_the_length_and_frames_of_the_generated_video(coded_video: Path, tmp_path: Path,
                                                                       cache: bool) -> None:
    source = VideoFileSource(coded_video, None, str(tmp_path / "cache") if cache else None)
    # 30 declared frames less the allowance (lift.data.decode.usable_frames).
    assert source.length == 28 and source.frame_hw == (H, W)
    frames = source.load([7, 2, 7, 27])  # any order, repeats allowed
    assert frames.shape == (4, H, W, 3) and frames.dtype == np.uint8
    assert [read_code(f) for f in frames] == [7, 2, 7, 27]
    crop = source.load([5], box=(8, 16, 24, 32))
    np.testing.assert_array_equal(crop[0], source.load([5])[0, 8:32, 16:48])
    assert [p.suffix for p in source.cache_files()] == ([".npy"] if cache else [])
    with pytest.raises(IndexError, match=r"frame indices \[30\] outside 0..27"):
        source.load([0, 30])


def test_sources_pickle_as_paths_and_load_the_same_frames_after(coded_video: Path, coded_folder: Path) -> None:
    for source in (VideoFileSource(coded_video, None, None),
                   ImageSequenceSource(sorted(coded_folder.glob("*.png")), None, None)):
        before = source.load([0, 3])
        blob = pickle.dumps(source)
        assert len(blob) < 4096  # paths and metadata, no decoded frames
        clone = pickle.loads(blob)
        assert clone.path == source.path and clone.length == source.length
        np.testing.assert_array_equal(clone.load([0, 3]), before)


def test_image_sequence_reads_in_file_order_and_resizes(coded_folder: Path, tmp_path: Path) -> None:
    files = sorted(coded_folder.glob("*.png"))
    source = ImageSequenceSource(files, None, None)
    assert (source.length, source.frame_hw, source.name) == (12, (H, W), coded_folder.name)
    assert [read_code(f) for f in source.load(range(12))] == list(range(12))
    small = ImageSequenceSource(files, (24, 32), str(tmp_path / "cache"))
    assert small.frame_hw == (24, 32) and small.load([1, 2]).shape == (2, 24, 32, 3)
    with pytest.raises(ValueError, match="at least one file"):
        ImageSequenceSource([], None, None)
    with pytest.raises(BadVideoError, match="does not exist"):
        ImageSequenceSource([tmp_path / "gone.png"], None, str(tmp_path / "cache")).load([0])


def test_segment_is_a_window_of_its_parent(coded_video: Path) -> None:
    parent = VideoFileSource(coded_video, None, None)
    segment = SegmentSource(parent, start=10, length=8)
    assert segment.length == 8 and segment.frame_hw == parent.frame_hw
    assert [read_code(f) for f in segment.load([0, 7])] == [10, 17]
    assert segment.path.endswith("[frames 10..17]")
    with pytest.raises(IndexError, match="outside 0..7"):
        segment.load([8])


def test_cluster_id_falls_back_from_cluster_to_group_to_video(coded_video: Path) -> None:
    source = VideoFileSource(coded_video, None, None)
    assert Sequence("v_Run_g01_c01", source, group="g01", cluster="v_Run_g01").cluster_id == "v_Run_g01"
    assert Sequence("clip_3", source, group="scene7").cluster_id == "scene7"
    assert Sequence("alone", source).cluster_id == "alone"
