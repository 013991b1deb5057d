"""X4K1000FPS trees (train/<scene>/<clip>, test/<Type>/<TEST..>) with large gaps and arbitrary timesteps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lift.data import BadVideoError, DatasetError, build_dataset
from lift.data.decode import STATS

from .conftest import data_cfg, read_code, write_png

FRAMES = 33
TRAIN = {"002": ["occ008.320_f2881", "occ008.320_f3201"], "005": ["occ008.322_f1"], "009": ["occ009.1_f1"],
         "011": ["occ011.1_f1"]}
TEST = {"Type1": ["TEST01_003_f0433"], "Type2": ["TEST05_158_f0321"]}


@pytest.fixture(scope="session")
def x4k_root(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    root = tmp_path_factory.mktemp("x4k")
    k = 0
    for part, tree in (("train", TRAIN), ("test", TEST)):
        for group, clips in tree.items():
            for clip in clips:
                for i, frame in enumerate(coded(FRAMES, start=9 * k)):
                    write_png(root / part / group / clip / f"{i:04d}.png", frame)
                k += 1
    return root


def cfg(tmp_path: Path, root: Path, **kw):
    return data_cfg(tmp_path, dataset="x4k", data_root=str(root), **kw)


def test_test_tree_with_a_large_gap(tmp_path: Path, x4k_root: Path) -> None:
    ds = build_dataset(cfg(tmp_path, x4k_root, gap=16, window=5, temporal_offset=8), "test")
    assert [s.video_id for s in ds.sequences] == ["test/Type1/TEST01_003_f0433", "test/Type2/TEST05_158_f0321"]
    assert len(ds) == 2  # the window spans all 33 frames: a single target per clip
    s = ds[0]
    assert s["target_index"] == 16 and read_code(s["target"]) == 16
    assert [read_code(f) for f in s["frames"]] == [8, 24, 0, 32]
    assert s["times"].tolist() == [0.0, 1.0, -0.5, 1.5] and float(s["timestep"]) == 0.5


def test_training_draws_arbitrary_timesteps(tmp_path: Path, x4k_root: Path) -> None:
    ds = build_dataset(cfg(tmp_path, x4k_root, gap=16, augment=True, flip=False, rotate=False, color_jitter=0.0),
                       "train", train=True, seed=5)
    steps = set()
    for i in range(0, len(ds), 2):
        s = ds[i]
        left, right = (read_code(f) for f in s["frames"])
        t = s["target_index"]
        assert read_code(s["target"]) == t and abs(right - left) == 16
        assert abs(t - left) == round(float(s["timestep"]) * 16)
        steps.add(round(float(s["timestep"]) * 16))
    assert len(steps) >= 10 and steps <= set(range(1, 16))


def test_val_is_carved_from_train_by_scene(tmp_path: Path, x4k_root: Path) -> None:
    c = cfg(tmp_path, x4k_root, val_fraction=0.3)
    parts = {split: build_dataset(c, split) for split in ("train", "val", "test")}
    groups = {split: {s.group for s in ds.sequences} for split, ds in parts.items()}
    assert groups["val"] and groups["train"] and not groups["train"] & groups["val"]
    assert groups["train"] | groups["val"] == {f"train/{g}" for g in TRAIN}
    assert len(parts["train"].sequences) + len(parts["val"].sequences) == 5
    assert len(build_dataset(c, "all").sequences) == 7
    for ds in parts.values():  # the cluster is the scene
        assert {s.cluster_id for s in ds.sequences} == {s.group for s in ds.sequences}
        assert ds[0]["cluster_id"] == ds[0]["video_id"].rsplit("/", 1)[0]


def test_resized_frames_are_cached(tmp_path: Path, x4k_root: Path) -> None:
    c = cfg(tmp_path, x4k_root, frame_size=[24, 32], crop_size=[16, 16], gap=8)
    ds = build_dataset(c, "test")
    assert ds[0]["target"].shape == (3, 24, 32)
    assert STATS.images_read == FRAMES and STATS.cache_writes == 1
    again = build_dataset(c, "test")
    again[0]
    assert STATS.images_read == FRAMES


def test_missing_trees(tmp_path: Path, x4k_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="x4k data_root: .*nowhere does not exist"):
        build_dataset(cfg(tmp_path, tmp_path / "nowhere"), "train")
    partial = tmp_path / "partial"
    shutil.copytree(x4k_root / "train", partial / "train")
    assert build_dataset(cfg(tmp_path, partial), "train").sequences
    with pytest.raises(FileNotFoundError, match=r"partial/test does not exist; expected train/<scene>/<clip>"):
        build_dataset(cfg(tmp_path, partial), "test")
    (partial / "test" / "Type1" / "EMPTY").mkdir(parents=True)
    with pytest.raises(BadVideoError, match=r"EMPTY: clip folder holds no frame images"):
        build_dataset(cfg(tmp_path, partial), "test")
    empty = tmp_path / "empty"
    (empty / "test").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no clip folders with frames"):
        build_dataset(cfg(tmp_path, empty), "test")
