"""UCF-101 raw videos (official layout, MPEG-4 AVIs with B-frames) and the ucf101_interp_ours triplets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lift.data import BadVideoError, DatasetError, WindowError, build_dataset

from .conftest import count_b_frames, data_cfg, read_code, write_png, write_video

CLASSES = ["ApplyEyeMakeup", "Biking", "HandstandPushups"]
GROUPS = range(1, 7)
TEST_GROUPS = {1: {1, 2}, 2: {3, 4}}
FRAMES = 18  # 16 usable (lift.data.decode.usable_frames): window 15 fits, 27 frames do not


def _name(cls: str, g: int, c: int) -> str:
    stem_cls = "HandStandPushups" if cls == "HandstandPushups" else cls  # the official name mismatch
    return f"v_{stem_cls}_g{g:02d}_c{c:02d}.avi"


@pytest.fixture(scope="session")
def ucf_root(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    root = tmp_path_factory.mktemp("ucf")
    k = 0
    for cls in CLASSES:
        for g in GROUPS:
            for c in (1, 2):
                write_video(root / "UCF-101" / cls / _name(cls, g, c), coded(FRAMES, start=7 * k))
                k += 1
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    for split, test_groups in TEST_GROUPS.items():
        train, test = [], []
        for label, cls in enumerate(CLASSES, 1):
            folder = cls.lower() if cls == "HandstandPushups" else cls  # a case mismatch in the list
            for g in GROUPS:
                for c in (1, 2):
                    rel = f"{folder}/{_name(cls, g, c)}"
                    (test if g in test_groups else train).append(rel)
                    if g not in test_groups:
                        train[-1] += f" {label}"
        (lists / f"trainlist0{split}.txt").write_text("\r\n".join(train) + "\r\n")
        (lists / f"testlist0{split}.txt").write_text("\r\n".join(test) + "\r\n")
    return root


@pytest.fixture
def ucf_copy(tmp_path: Path, ucf_root: Path) -> Path:
    dst = tmp_path / "ucf"
    shutil.copytree(ucf_root, dst)
    return dst


def cfg(tmp_path: Path, root: Path, **kw):
    return data_cfg(tmp_path, dataset="ucf101", data_root=str(root), **kw)


def _groups(ds) -> set[str]:
    return {s.group for s in ds.sequences}


@pytest.mark.parametrize("split", [1, 2])
def test_splits_follow_the_lists_and_never_share_a_group(tmp_path: Path, ucf_root: Path, split: int) -> None:
    c = cfg(tmp_path, ucf_root, ucf_split=split, val_fraction=0.25)
    parts = {name: build_dataset(c, name) for name in ("train", "val", "test")}
    groups = {name: _groups(ds) for name, ds in parts.items()}
    assert groups["test"] == {f"g{g:02d}" for g in TEST_GROUPS[split]}
    assert groups["val"] and groups["train"]
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert groups["train"] | groups["val"] | groups["test"] == {f"g{g:02d}" for g in GROUPS}
    ids = {name: {s.video_id for s in ds.sequences} for name, ds in parts.items()}
    assert sum(len(v) for v in ids.values()) == len(CLASSES) * len(GROUPS) * 2
    for name, ds in parts.items():
        for seq in ds.sequences:  # every clip of a group sits with its group
            assert f"_{seq.group}_" in seq.video_id
            # The independent source: the class's group, shared by its clips _c01, _c02...
            assert seq.cluster_id == seq.video_id.rsplit("_c", 1)[0] and seq.cluster_id.endswith(seq.group)
    clusters = {name: {s.cluster_id for s in ds.sequences} for name, ds in parts.items()}
    assert all(len(v) == len(CLASSES) * len(groups[name]) for name, v in clusters.items())
    assert parts["test"][0]["cluster_id"] == parts["test"].sequences[parts["test"]._items[0][0]].cluster_id
    assert len(build_dataset(c, "all").sequences) == len(CLASSES) * len(GROUPS) * 2
    # Deterministic: the same val groups every time.
    assert _groups(build_dataset(c, "val")) == groups["val"]


def test_exact_frames_from_avis_with_b_frames(tmp_path: Path, ucf_root: Path) -> None:
    video = ucf_root / "UCF-101" / "Biking" / "v_Biking_g01_c01.avi"
    assert count_b_frames(video) > 0
    ds = build_dataset(cfg(tmp_path, ucf_root, window=7, temporal_offset=2, eval_targets_per_video=3,
                           max_sequences=6), "test")
    assert len(ds) == 18
    for i in range(len(ds)):
        s = ds[i]
        t = s["target_index"]
        assert read_code(s["target"]) == t
        assert [read_code(f) for f in s["frames"]] == [t - 1, t + 1, t - 3, t - 5, t + 3, t + 5]
        assert s["sample_id"] == f"ucf101/{s['video_id']}/{t:06d}"
        assert s["video_id"].startswith("v_") and "_g0" in s["video_id"]
    train = build_dataset(cfg(tmp_path, ucf_root, window=7, augment=True, crop_size=[32, 32], max_sequences=4),
                          "train")
    assert train[3]["frames"].shape == (6, 3, 32, 32)


def test_case_mismatch_in_the_lists_is_resolved(tmp_path: Path, ucf_root: Path) -> None:
    ds = build_dataset(cfg(tmp_path, ucf_root), "test")
    assert "v_HandStandPushups_g01_c01" in {s.video_id for s in ds.sequences}


def test_missing_root_folders_and_lists(tmp_path: Path, ucf_copy: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        build_dataset(cfg(tmp_path, tmp_path / "nowhere"), "train")
    with pytest.raises(FileNotFoundError, match=r"trainlist03.txt does not exist"):
        build_dataset(cfg(tmp_path, ucf_copy, ucf_split=3), "train")
    shutil.rmtree(ucf_copy / "ucfTrainTestlist")
    with pytest.raises(FileNotFoundError, match=r"ucfTrainTestlist does not exist"):
        build_dataset(cfg(tmp_path, ucf_copy), "train")


def test_listed_video_missing_or_unreadable(tmp_path: Path, ucf_copy: Path) -> None:
    (ucf_copy / "UCF-101" / "Biking" / "v_Biking_g01_c02.avi").unlink()
    (ucf_copy / "UCF-101" / "Biking" / "v_Biking_g02_c01.avi").write_bytes(b"not an avi" * 30)
    with pytest.raises(BadVideoError, match=r"v_Biking_g01_c02.avi: video listed in the split file does not exist"):
        build_dataset(cfg(tmp_path, ucf_copy), "test")
    ds = build_dataset(cfg(tmp_path, ucf_copy, on_bad_video="skip"), "test")
    assert len(ds.sequences) == len(CLASSES) * 2 * 2 - 2
    assert {Path(p).name for p, _ in ds.skipped} == {"v_Biking_g01_c02.avi", "v_Biking_g02_c01.avi"}


def test_short_videos_and_windows(tmp_path: Path, ucf_copy: Path, coded) -> None:
    # 5 declared frames, 3 usable (lift.data.decode.usable_frames).
    write_video(ucf_copy / "UCF-101" / "Biking" / "v_Biking_g01_c01.avi", coded(5))
    with pytest.raises(WindowError, match=r"v_Biking_g01_c01.*window=7.*only 3"):
        build_dataset(cfg(tmp_path, ucf_copy, window=7), "test")
    ds = build_dataset(cfg(tmp_path, ucf_copy, window=7, on_bad_video="skip"), "test")
    assert len(ds.skipped) == 1 and "only 3" in ds.skipped[0][1]
    # Evaluation windows must fit the study's largest arm (eval_max_offset=2: 27 frames).
    with pytest.raises(WindowError, match=r"window=15 with temporal_offset=2 and gap=2 needs 27 consecutive frames, "
                                          r"but only 16"):
        build_dataset(cfg(tmp_path, ucf_copy, window=15, temporal_offset=1, eval_max_offset=2), "test")
    with pytest.raises(WindowError, match=r"no sequence fits window=15 with temporal_offset=2 and gap=2: it needs 27 "
                                          r"consecutive frames, the longest of \d+ sequences has 16"):
        build_dataset(cfg(tmp_path, ucf_copy, window=15, eval_max_offset=2, on_bad_video="skip"), "test")
    assert len(build_dataset(cfg(tmp_path, ucf_copy, window=15), "train", train=True).sequences) > 0


def test_malformed_lists_and_shared_groups(tmp_path: Path, ucf_copy: Path) -> None:
    lists = ucf_copy / "ucfTrainTestlist"
    original = (lists / "testlist01.txt").read_text()
    (lists / "testlist01.txt").write_text(original + "Biking/some_clip.avi\n")
    with pytest.raises(DatasetError, match=r"testlist01.txt:\d+: expected 'Class/v_Class_gXX_cYY.avi"):
        build_dataset(cfg(tmp_path, ucf_copy), "test")
    (lists / "testlist01.txt").write_text(original + "Biking/v_Biking_g05_c01.avi\n")
    with pytest.raises(DatasetError, match=r"share groups g05"):
        build_dataset(cfg(tmp_path, ucf_copy), "train")


# -- ucf101_triplets ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def triplet_root(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    root = tmp_path_factory.mktemp("triplets")
    for k, name in enumerate(["1", "2", "10"]):
        f0, f1, f2 = coded(3, start=13 * k)
        folder = root / "ucf101_interp_ours" / name
        write_png(folder / "frame_00.png", f0)
        write_png(folder / "frame_01_gt.png", f1)
        write_png(folder / "frame_02.png", f2)
    return root


def test_triplets(tmp_path: Path, triplet_root: Path) -> None:
    for root in (triplet_root, triplet_root / "ucf101_interp_ours"):
        ds = build_dataset(data_cfg(tmp_path, dataset="ucf101_triplets", data_root=str(root)), "test")
        assert [s.video_id for s in ds.sequences] == ["1", "2", "10"]
        assert len(ds) == 3
        s = ds[0]
        assert s["target_index"] == 1 and read_code(s["target"]) == 1
        assert [read_code(f) for f in s["frames"]] == [0, 2]
        assert s["sample_id"] == "ucf101_triplets/1/000001" and float(s["timestep"]) == 0.5
        assert s["cluster_id"] == "1"  # a triplet names no group: it is its own source
    with pytest.raises(WindowError, match=r"exactly 3 frames.*window=5"):
        build_dataset(data_cfg(tmp_path, dataset="ucf101_triplets", data_root=str(triplet_root), window=5), "test")
    with pytest.raises(ValueError, match=r"split 'train' is not available; this dataset has test, all"):
        build_dataset(data_cfg(tmp_path, dataset="ucf101_triplets", data_root=str(triplet_root)), "train")


def test_incomplete_triplet(tmp_path: Path, triplet_root: Path) -> None:
    root = tmp_path / "t"
    shutil.copytree(triplet_root, root)
    (root / "ucf101_interp_ours" / "2" / "frame_01_gt.png").unlink()
    with pytest.raises(BadVideoError, match=r"ucf101_interp_ours/2: triplet folder lacks frame_01_gt.png"):
        build_dataset(data_cfg(tmp_path, dataset="ucf101_triplets", data_root=str(root)), "test")
    ds = build_dataset(data_cfg(tmp_path, dataset="ucf101_triplets", data_root=str(root), on_bad_video="skip"), "all")
    assert [s.video_id for s in ds.sequences] == ["1", "10"] and len(ds.skipped) == 1
