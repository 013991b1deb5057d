"""Vimeo-90K septuplets in the real layout (PNG tree + sep_trainlist/sep_testlist), from real frames."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from lift.data import BadVideoError, DatasetError, WindowError, build_dataset

from .conftest import data_cfg, read_code, write_png

TRAIN = ["00001/0001", "00001/0002", "00002/0001", "00003/0001", "00003/0002", "00004/0001", "00005/0001"]
TEST = ["00006/0001", "00007/0001"]


@pytest.fixture(scope="session")
def vimeo_root(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    root = tmp_path_factory.mktemp("vimeo") / "vimeo_septuplet"
    for k, sid in enumerate(TRAIN + TEST):
        for i, frame in enumerate(coded(7, start=11 * k)):
            write_png(root / "sequences" / sid / f"im{i + 1}.png", frame)
    (root / "sep_trainlist.txt").write_text("\n".join(TRAIN) + "\n")
    (root / "sep_testlist.txt").write_text("\n".join(TEST) + "\n\n")
    return root


@pytest.fixture
def vimeo_copy(tmp_path: Path, vimeo_root: Path) -> Path:
    dst = tmp_path / "vimeo_septuplet"
    shutil.copytree(vimeo_root, dst)
    return dst


def cfg(tmp_path: Path, root: Path, **kw):
    return data_cfg(tmp_path, dataset="vimeo", data_root=str(root), **kw)


def test_window_7_uses_all_seven_frames(tmp_path: Path, vimeo_root: Path) -> None:
    ds = build_dataset(cfg(tmp_path, vimeo_root, window=7), "test")
    assert [s.video_id for s in ds.sequences] == TEST
    assert len(ds) == 2
    s = ds[0]
    assert s["target_index"] == 3 and read_code(s["target"]) == 3
    assert [read_code(f) for f in s["frames"]] == [2, 4, 1, 0, 5, 6]
    assert s["sample_id"] == "vimeo/00006/0001/000003"


def test_triplet_windows_on_septuplets(tmp_path: Path, vimeo_root: Path) -> None:
    ds = build_dataset(cfg(tmp_path, vimeo_root, window=3, eval_targets_per_video=8), "test")
    assert [ds[i]["target_index"] for i in range(len(ds))] == [1, 2, 3, 4, 5] * 2
    centre = build_dataset(cfg(tmp_path, vimeo_root, window=3, eval_targets_per_video=1), "test")
    assert [centre[i]["target_index"] for i in range(len(centre))] == [3, 3]
    gap4 = build_dataset(cfg(tmp_path, vimeo_root, window=5, gap=4), "test")
    s = gap4[0]
    assert [read_code(f) for f in s["frames"]] == [1, 5, 0, 6] and s["target_index"] == 3
    # Parent folder of vimeo_septuplet is accepted too.
    assert len(build_dataset(cfg(tmp_path, vimeo_root.parent, window=3, eval_targets_per_video=8), "test")) == 10


@pytest.mark.parametrize("window,offset,gap", [(9, 1, 2), (7, 2, 2), (3, 1, 8)])
def test_more_than_seven_frames_is_a_clear_error(tmp_path: Path, vimeo_root: Path, window: int, offset: int,
                                                 gap: int) -> None:
    with pytest.raises(WindowError, match=rf"exactly 7 frames.*window={window} with temporal_offset={offset} "
                                          rf"and gap={gap} needs \d+ consecutive frames, but only 7"):
        build_dataset(cfg(tmp_path, vimeo_root, window=window, temporal_offset=offset, gap=gap), "train")
    with pytest.raises(WindowError, match=r"window=9"):
        build_dataset(cfg(tmp_path, vimeo_root, window=3, eval_max_window=9), "val")


def test_splits_are_disjoint_by_source_folder(tmp_path: Path, vimeo_root: Path) -> None:
    c = cfg(tmp_path, vimeo_root, val_fraction=0.3)
    parts = {split: [s.video_id for s in build_dataset(c, split).sequences] for split in ("train", "val", "test")}
    assert parts["train"] and parts["val"]
    assert sorted(parts["train"] + parts["val"]) == TRAIN and parts["test"] == TEST
    groups = {split: {sid.split("/")[0] for sid in ids} for split, ids in parts.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    for split in ("val", "test"):  # the cluster is the 5-digit sequence folder
        ds = build_dataset(c, split)
        assert {s.cluster_id for s in ds.sequences} == groups[split]
        assert ds[0]["cluster_id"] == ds[0]["video_id"].split("/")[0]
    assert len(build_dataset(c, "all").sequences) == 9
    train = build_dataset(c, "train", train=True)
    s = train[0]
    assert s["frames"].shape == (2, 3, 48, 64)


def test_missing_root_lists_and_folders(tmp_path: Path, vimeo_copy: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere does not exist.*sep_trainlist.txt"):
        build_dataset(cfg(tmp_path, tmp_path / "nowhere"), "train")
    with pytest.raises(FileNotFoundError, match="vimeo data_root: data.data_root is not set"):
        build_dataset(data_cfg(tmp_path, dataset="vimeo"), "train")
    (vimeo_copy / "sep_testlist.txt").unlink()
    with pytest.raises(FileNotFoundError, match="sep_testlist.txt does not exist"):
        build_dataset(cfg(tmp_path, vimeo_copy), "test")
    (vimeo_copy / "sep_testlist.txt").write_text("00006/0001\n00099/0001\n")
    with pytest.raises(BadVideoError, match="00099/0001: septuplet folder listed in the split file does not exist"):
        build_dataset(cfg(tmp_path, vimeo_copy), "test")
    ds = build_dataset(cfg(tmp_path, vimeo_copy, on_bad_video="skip"), "test")
    assert [s.video_id for s in ds.sequences] == ["00006/0001"] and len(ds.skipped) == 1
    (vimeo_copy / "sep_testlist.txt").write_text("00006/0001\n00006\n")
    with pytest.raises(DatasetError, match=r"sep_testlist.txt:2: expected a septuplet id"):
        build_dataset(cfg(tmp_path, vimeo_copy), "test")


def test_bad_frames_inside_a_septuplet(tmp_path: Path, vimeo_copy: Path, coded, caplog) -> None:
    folder = vimeo_copy / "sequences" / "00006" / "0001"
    frame = coded(7, start=11 * 7)[3]
    write_png(folder / "im4.png", np.ascontiguousarray(frame[:, :56]))
    ds = build_dataset(cfg(tmp_path, vimeo_copy, window=7), "test")
    with pytest.raises(BadVideoError, match=r"im4.png: frame is 56x48 but the sequence's first frame is 64x48"):
        ds[0]
    skip = build_dataset(cfg(tmp_path, vimeo_copy, window=7, on_bad_video="skip"), "test")
    assert [s.video_id for s in skip.sequences] == ["00007/0001"]
    assert skip.skipped[0][0].endswith("im4.png")
    write_png(folder / "im4.png", np.ascontiguousarray(frame[..., 1]))
    with caplog.at_level(logging.WARNING, logger="lift.data.decode"):
        s = build_dataset(cfg(tmp_path, vimeo_copy, window=7), "test")[0]
    assert any("im4.png" in r.message and "grayscale" in r.message for r in caplog.records)
    assert bool((s["target"][0] == s["target"][2]).all())
