"""Synthetic sequences: determinism, exact ground-truth flow/occlusion, and flow-consistent augmentation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lift.data import build_dataloader, build_dataset
from lift.data.synthetic import SyntheticSource

from .conftest import data_cfg


def cfg(tmp_path: Path, **kw):
    base = dict(dataset="synthetic", crop_size=[64, 64])
    base.update(kw)
    return data_cfg(tmp_path, **base)


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image [3, H, W] sampled at (x + u, y + v) for every target pixel (integer flows: exact copies)."""
    _, h, w = image.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    sx = (xx + flow[0].round().long()).clamp(0, w - 1)
    sy = (yy + flow[1].round().long()).clamp(0, h - 1)
    return image[:, sy, sx]


def check_flow(sample: dict) -> float:
    """Assert warping every input by flow_gt reproduces the target wherever `valid`; return the valid fraction."""
    frames, flows, valid = sample["frames"], sample["flow_gt"], sample["valid"]
    assert flows.shape == (frames.shape[0], 2, *frames.shape[2:]) and valid.shape == (frames.shape[0], 1, *frames.shape[2:])
    assert torch.equal(flows, flows.round())  # whole-pixel motion by construction
    for i in range(frames.shape[0]):
        warped = backward_warp(frames[i], flows[i])
        mask = valid[i].bool().expand_as(warped)
        assert torch.equal(warped[mask], sample["target"][mask]), f"input {i}: flow_gt does not map target to input"
    return float(valid.mean())


def test_sequences_are_deterministic_and_splits_differ(tmp_path: Path) -> None:
    a = build_dataset(cfg(tmp_path, window=5), "test")
    b = build_dataset(cfg(tmp_path, window=5), "test")
    assert len(a.sequences) == 3 and a.sample_ids == b.sample_ids
    for i in (0, len(a) - 1):
        for key in ("frames", "target", "flow_gt", "valid"):
            assert torch.equal(a[i][key], b[i][key])
    val = build_dataset(cfg(tmp_path, window=5), "val")
    assert not torch.equal(val[0]["frames"], a[0]["frames"])
    assert {s.video_id for s in a.sequences} == {"test000", "test001", "test002"}
    assert a[0]["cluster_id"] == a[0]["video_id"]  # each generated source is its own cluster
    assert len(build_dataset(cfg(tmp_path), "all").sequences) == 8 + 3 + 3


def test_flow_gt_is_exact_and_occlusions_exist(tmp_path: Path) -> None:
    ds = build_dataset(cfg(tmp_path, window=7, temporal_offset=2, eval_targets_per_video=3), "test")
    fractions = [check_flow(ds[i]) for i in range(len(ds))]
    assert 0.5 < min(fractions) and max(fractions) < 1.0, fractions  # mostly visible, some occluded
    s = ds[0]
    # Non-linear motion: the flow to the far references is not a multiple of the flow to the anchors.
    assert s["flow_gt"].abs().amax() > 0


def test_motion_is_non_linear() -> None:
    src = SyntheticSource(seed=1_000_003, length=30, hw=(64, 64))
    layers = src._build()
    accelerations = [np.abs(np.diff(layer.position, n=2, axis=0)).sum() for layer in layers]
    assert all(a > 0 for a in accelerations)


def test_augmentations_transform_flow_consistently(tmp_path: Path) -> None:
    ds = build_dataset(cfg(tmp_path, window=5, gap=4, augment=True, flip=True, rotate=True, temporal_reverse=True,
                           color_jitter=0.0), "train", train=True, seed=11)
    checked = 0
    for i in range(0, len(ds), 7):
        check_flow(ds[i])
        checked += 1
    assert checked >= 10
    # And with random crops smaller than the frame (flow maps cropped with the frames).
    small = build_dataset(cfg(tmp_path, window=3, augment=True, crop_size=[32, 32], frame_size=[64, 64]), "train",
                          train=True)
    for i in range(0, 40, 5):
        s = small[i]
        assert s["frames"].shape == (2, 3, 32, 32) and s["flow_gt"].shape == (2, 2, 32, 32)
        # Warping inside the crop: exact wherever the source pixel also lies inside the crop.
        flows, valid = s["flow_gt"], s["valid"]
        for k in range(2):
            yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
            sx, sy = xx + flows[k, 0].long(), yy + flows[k, 1].long()
            inside = (sx >= 0) & (sx < 32) & (sy >= 0) & (sy < 32) & valid[k, 0].bool()
            warped = backward_warp(s["frames"][k], flows[k])
            assert torch.equal(warped[:, inside], s["target"][:, inside])


def test_fast_enough_for_model_tests(tmp_path: Path) -> None:
    start = time.perf_counter()
    ds = build_dataset(cfg(tmp_path, window=15), "train", train=True)
    batch = next(iter(build_dataloader(ds, batch_size=8, num_workers=0)))
    elapsed = time.perf_counter() - start
    assert batch["frames"].shape == (8, 14, 3, 64, 64) and batch["flow_gt"].shape == (8, 14, 2, 64, 64)
    assert batch["valid"].shape == (8, 14, 1, 64, 64)
    assert elapsed < 5.0, f"8 synthetic window-15 samples took {elapsed:.2f}s"


@pytest.mark.parametrize("frame_size", [[48, 80], [128, 96]])
def test_frame_sizes(tmp_path: Path, frame_size: list[int]) -> None:
    ds = build_dataset(cfg(tmp_path, frame_size=frame_size, crop_size=[32, 32]), "val")
    s = ds[0]
    assert s["target"].shape == (3, *frame_size)
    check_flow(s)


def test_generated_sources_pickle_without_their_renders_and_load_the_same() -> None:
    """GeneratedSource drops what it memoises when pickled into a worker; the copy renders it again."""
    import pickle

    from lift.data.known_answer import KnownAnswerSource

    for src in (SyntheticSource(seed=7, length=12, hw=[48, 40]), KnownAnswerSource(7, 12, (48, 40), informative=True)):
        first = src.load([0, 5, 11])
        assert src.length == 12 and src.frame_hw == (48, 40)
        state = src.__getstate__()
        assert all(state[name] == empty() for name, empty in type(src)._LAZY.items())
        copy = pickle.loads(pickle.dumps(src))
        assert len(pickle.dumps(src)) < first.nbytes  # the renders did not travel
        np.testing.assert_array_equal(copy.load([0, 5, 11]), first)
