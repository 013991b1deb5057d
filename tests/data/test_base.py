"""BaseVideoDataset: window geometry on real decoded frames, training draws, augmentation, eval targets,
bad inputs, caching across epochs. Frames carry their index (see conftest), so every assertion is on
content, not on bookkeeping."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from lift.data import BadVideoError, WindowError, WindowSpec, build_dataloader, build_dataset
from lift.data.base import color_jitter, evenly_spaced, spatial_op
from lift.data.decode import STATS

from .conftest import data_cfg, read_code, write_video


def codes(frames: torch.Tensor) -> list[int]:
    return [read_code(f) for f in frames]


@pytest.mark.parametrize("window,offset,gap", [(3, 1, 2), (7, 2, 2), (5, 3, 4), (9, 1, 2)])
def test_eval_windows_hold_the_defined_frames(tmp_path: Path, avi_folder: Path, window: int, offset: int,
                                              gap: int) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), window=window, temporal_offset=offset, gap=gap)
    ds = build_dataset(cfg, "all")
    assert not ds.train and ds.spec == WindowSpec(window, offset, gap)
    assert len(ds.sequences) == 5 and len(ds) == 5 * 4
    spec = ds.spec
    a = gap // 2
    for i in range(len(ds)):
        s = ds[i]
        t = s["target_index"]
        assert s["frames"].shape == (window - 1, 3, 48, 64) and s["frames"].dtype == torch.float32
        assert s["target"].shape == (3, 48, 64)
        assert read_code(s["target"]) == t
        assert codes(s["frames"]) == [t + o for o in spec.input_offsets(a)]
        # left anchor t-a, right anchor t+b, then left refs t-a-s*k, right refs t+b+s*k
        assert codes(s["frames"])[:2] == [t - a, t + gap - a]
        assert s["times"].tolist() == pytest.approx(spec.input_times(a))
        assert s["times"][:2].tolist() == [0.0, 1.0]
        assert float(s["timestep"]) == pytest.approx(a / gap)
        assert s["sample_id"] == f"video_folder/{s['video_id']}/{t:06d}"
        assert 0.0 <= float(s["frames"].min()) and float(s["frames"].max()) <= 1.0


def test_random_anchor_distance_and_temporal_reversal(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), window=5, temporal_offset=2, gap=4, augment=True,
                   flip=False, rotate=False, color_jitter=0.0, temporal_reverse=True, crop_size=[48, 64])
    ds = build_dataset(cfg, "all", train=True, seed=3)
    spec = ds.spec
    assert len(ds) == sum(seq.source.length - spec.span + 1 for seq in ds.sequences)
    seen_steps, seen_reversed = set(), set()
    for i in range(0, len(ds), 3):
        s = ds[i]
        t = s["target_index"]
        c = codes(s["frames"])
        assert read_code(s["target"]) == t
        step = float(s["timestep"])
        reversed_ = c[0] > c[1]
        seen_steps.add(step)
        seen_reversed.add(reversed_)
        # Times keep the contract: left anchor 0, right anchor 1, target at `timestep`.
        assert s["times"][:2].tolist() == [0.0, 1.0]
        # The anchors bracket the target; the first anchor is `timestep * gap` frames from it.
        assert min(c[0], c[1]) < t < max(c[0], c[1]) and abs(c[1] - c[0]) == 4
        assert abs(t - c[0]) == round(step * 4)
        # References continue outward on each side, 2 frames apart, in the playing direction.
        direction = -1 if reversed_ else 1
        assert c[2] == c[0] - direction * 2 and c[3] == c[1] + direction * 2
        # Relative times of the references agree with the frame distances.
        expected_times = [(code - c[0]) * direction / 4 for code in c]
        assert s["times"].tolist() == pytest.approx(expected_times)
    assert seen_steps == {0.25, 0.5, 0.75}
    assert seen_reversed == {True, False}


def test_training_draws_are_seeded_and_change_with_the_epoch(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), window=3, gap=4, augment=True, color_jitter=0.1)
    a, b = build_dataset(cfg, "all", seed=7, train=True), build_dataset(cfg, "all", seed=7, train=True)
    for i in (0, 5, 11):
        torch.testing.assert_close(a[i]["frames"], b[i]["frames"])
        assert a[i]["sample_id"] == b[i]["sample_id"]
    before = [(a[i]["timestep"].item(), a[i]["frames"].sum().item()) for i in range(12)]
    a.set_epoch(1)
    after = [(a[i]["timestep"].item(), a[i]["frames"].sum().item()) for i in range(12)]
    assert before != after
    other_seed = build_dataset(cfg, "all", seed=8, train=True)
    assert [other_seed[i]["frames"].sum().item() for i in range(12)] != [x[1] for x in before]


def test_train_samples_per_epoch_draws_random_positions(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), train_samples_per_epoch=10)
    ds = build_dataset(cfg, "all", train=True)
    assert len(ds) == 10
    ids = {ds[i]["video_id"] for i in range(10)}
    assert len(ids) >= 2
    for i in range(10):
        s = ds[i]
        assert read_code(s["target"]) == s["target_index"]


def _find_op(plain: np.ndarray, aug: np.ndarray) -> tuple[bool, bool, int]:
    """Which flip/rotation combination maps plain [3, H, W] to aug."""
    for op in itertools.product((False, True), (False, True), range(4)):
        x = _apply(plain, op)
        if x.shape == aug.shape and np.array_equal(x, aug):
            return op
    raise AssertionError("no flip/rotation maps the plain frame to the augmented one")


def _apply(x: np.ndarray, op: tuple[bool, bool, int]) -> np.ndarray:
    h, v, k = op
    x = x[None]
    if h:
        x = spatial_op(x, "hflip", channels_last=False)
    if v:
        x = spatial_op(x, "vflip", channels_last=False)
    if k:
        x = spatial_op(x, "rot", k, channels_last=False)
    return x[0]


def test_geometric_augmentation_is_identical_for_every_frame(tmp_path: Path, avi_folder: Path) -> None:
    common = dict(data_root=str(avi_folder), window=7, temporal_offset=1, crop_size=[40, 40], temporal_reverse=False)
    plain = build_dataset(data_cfg(tmp_path, **common, augment=False), "all", train=True, seed=1)
    aug = build_dataset(data_cfg(tmp_path, **common, augment=True, flip=True, rotate=True, color_jitter=0.0),
                        "all", train=True, seed=1)
    ops = set()
    for i in range(0, len(plain), 4):
        p, q = plain[i], aug[i]
        assert p["sample_id"] == q["sample_id"]  # same draws: same window, same crop
        op = _find_op(p["target"].numpy(), q["target"].numpy())
        ops.add(op)
        for f_plain, f_aug in zip(p["frames"].numpy(), q["frames"].numpy()):
            np.testing.assert_array_equal(_apply(f_plain, op), f_aug)
    assert len(ops) >= 4, f"augmentations barely vary: {ops}"
    assert any(k % 2 == 1 for _, _, k in ops), "square crops get quarter turns"


def test_non_square_crops_are_only_turned_by_half_turns(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), crop_size=[32, 48], augment=True, rotate=True)
    ds = build_dataset(cfg, "all", train=True)
    assert {tuple(ds[i]["frames"].shape) for i in range(0, len(ds), 5)} == {(2, 3, 32, 48)}


def test_color_jitter_is_one_map_for_all_frames() -> None:
    x = torch.rand(5, 3, 8, 8)
    x[3] = x[0]
    y = color_jitter(x.clone(), [1.2, 0.8, 1.3])
    torch.testing.assert_close(y[3], y[0])
    assert not torch.allclose(y, x)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    torch.testing.assert_close(color_jitter(x.clone(), [1.0, 1.0, 1.0]), x)


def test_jitter_changes_colours_but_not_geometry(tmp_path: Path, avi_folder: Path) -> None:
    common = dict(data_root=str(avi_folder), window=3, flip=False, rotate=False, temporal_reverse=False)
    plain = build_dataset(data_cfg(tmp_path, **common, augment=False), "all", train=True, seed=2)
    jit = build_dataset(data_cfg(tmp_path, **common, augment=True, color_jitter=0.3), "all", train=True, seed=2)
    p, q = plain[4], jit[4]
    assert not torch.allclose(p["frames"], q["frames"])
    # Every frame went through the same per-pixel map: pixels equal across frames stay equal.
    stack_p = torch.cat([p["frames"], p["target"][None]]).permute(0, 2, 3, 1).reshape(-1, 3)
    stack_q = torch.cat([q["frames"], q["target"][None]]).permute(0, 2, 3, 1).reshape(-1, 3)
    _, inverse = torch.unique(stack_p, dim=0, return_inverse=True)
    for group in torch.unique(inverse)[:50]:
        members = stack_q[inverse == group]
        torch.testing.assert_close(members, members[:1].expand_as(members))


def test_channel_reverse_swaps_rgb_of_the_whole_window_on_half_the_draws(tmp_path: Path, avi_folder: Path) -> None:
    common = dict(data_root=str(avi_folder), window=3, flip=False, rotate=False, temporal_reverse=False,
                  color_jitter=0.0, augment=True)
    plain = build_dataset(data_cfg(tmp_path, **common), "all", train=True, seed=2)
    rev = build_dataset(data_cfg(tmp_path, **common, channel_reverse=True), "all", train=True, seed=2)
    flipped = 0
    for i in range(12):
        p, q = plain[i], rev[i]
        if torch.equal(p["frames"], q["frames"]):
            torch.testing.assert_close(p["target"], q["target"])
        else:
            torch.testing.assert_close(q["frames"], p["frames"].flip(1))
            torch.testing.assert_close(q["target"], p["target"].flip(0))
            flipped += 1
    assert 2 <= flipped <= 10


def test_eval_targets_are_evenly_spaced_and_shared_by_every_arm(tmp_path: Path, avi_folder: Path) -> None:
    assert evenly_spaced(range(10), 1) == [5]
    assert evenly_spaced(range(10), 5) == [1, 3, 5, 7, 9]
    assert evenly_spaced(range(3), 8) == [0, 1, 2]
    ids = {}
    for window, offset in [(3, 1), (7, 2), (9, 2)]:
        cfg = data_cfg(tmp_path, data_root=str(avi_folder), window=window, temporal_offset=offset,
                       eval_max_window=9, eval_max_offset=2, eval_targets_per_video=3)
        ds = build_dataset(cfg, "all")
        ids[(window, offset)] = ds.sample_ids
        assert [ds[i]["sample_id"] for i in range(len(ds))] == ds.sample_ids
        # Targets lie where the largest window (9 with offset 2: 7 frames each side) fits.
        lengths = {seq.video_id: seq.source.length for seq in ds.sequences}
        for i in range(len(ds)):
            s = ds[i]
            assert 7 <= s["target_index"] <= lengths[s["video_id"]] - 8
    assert ids[(3, 1)] == ids[(7, 2)] == ids[(9, 2)]
    assert len(ids[(3, 1)]) == 15
    again = build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), window=3, eval_max_window=9,
                                   eval_max_offset=2, eval_targets_per_video=3), "all")
    assert again.sample_ids == ids[(3, 1)]
    # A centre eval crop.
    cropped = build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), eval_crop=[32, 32]), "all")
    full = build_dataset(data_cfg(tmp_path, data_root=str(avi_folder)), "all")
    torch.testing.assert_close(cropped[0]["target"], full[0]["target"][:, 8:40, 16:48])


def test_max_sequences(tmp_path: Path, avi_folder: Path) -> None:
    ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), max_sequences=2), "all")
    assert [s.video_id for s in ds.sequences] == ["alpha", "bravo"]


def test_window_larger_than_every_video_is_an_error(tmp_path: Path, avi_folder: Path) -> None:
    for mode in ("error", "skip"):
        cfg = data_cfg(tmp_path, data_root=str(avi_folder), window=15, temporal_offset=2, on_bad_video=mode)
        # The 24-frame videos provide 22 (lift.data.decode.usable_frames).
        with pytest.raises(WindowError, match=r"window=15.*temporal_offset=2.*gap=2.*27.*22"):
            build_dataset(cfg, "all")


def test_short_video_is_an_error_or_a_counted_skip(tmp_path: Path, avi_copy: Path, coded, caplog) -> None:
    write_video(avi_copy / "foxtrot.avi", coded(6))
    cfg = data_cfg(tmp_path, data_root=str(avi_copy), window=7, temporal_offset=1)
    # 6 declared frames, 4 usable (lift.data.decode.usable_frames).
    with pytest.raises(WindowError, match=r"foxtrot.*window=7.*needs 7.*only 4"):
        build_dataset(cfg, "all")
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_copy), window=7, on_bad_video="skip"), "all")
    assert [s.video_id for s in ds.sequences] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert len(ds.skipped) == 1 and ds.skipped[0][0].endswith("foxtrot.avi") and "only 4" in ds.skipped[0][1]
    assert any("foxtrot" in r.message for r in caplog.records)


def test_crop_larger_than_the_frames_names_both_sizes(tmp_path: Path, avi_folder: Path) -> None:
    with pytest.raises(ValueError, match=r"data.crop_size 128x128 .* larger than the 48x64 frames"):
        build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), crop_size=[128, 128]), "all", train=True)
    with pytest.raises(ValueError, match=r"data.eval_crop 64x64 .* larger than the 48x64 frames"):
        build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), eval_crop=[64, 64]), "all")


def test_bad_videos_error_or_skip(tmp_path: Path, avi_copy: Path, caplog) -> None:
    (avi_copy / "broken.avi").write_bytes(b"\x00garbage" * 100)
    data = (avi_copy / "delta.avi").read_bytes()
    (avi_copy / "delta.avi").write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(BadVideoError, match="broken.avi: cannot be opened"):
        build_dataset(data_cfg(tmp_path, data_root=str(avi_copy)), "all")
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_copy), on_bad_video="skip"), "all")
    assert [s.video_id for s in ds.sequences] == ["alpha", "bravo", "charlie", "echo"]
    skipped = dict(ds.skipped)
    assert set(Path(p).name for p in skipped) == {"broken.avi", "delta.avi"}
    assert sum("skipping" in r.message for r in caplog.records) == 2
    for i in range(len(ds)):  # every kept sample is intact
        assert read_code(ds[i]["target"]) == ds[i]["target_index"]


def test_truncated_video_in_error_mode_fails_when_loaded(tmp_path: Path, avi_copy: Path) -> None:
    data = (avi_copy / "alpha.avi").read_bytes()
    (avi_copy / "alpha.avi").write_bytes(data[: int(len(data) * 0.8)])
    ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_copy), max_sequences=1), "all")
    with pytest.raises(BadVideoError, match="alpha.avi"):
        ds[0]


def test_second_epoch_reads_the_cache_without_decoding(tmp_path: Path, avi_folder: Path) -> None:
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), window=5, augment=True)
    ds = build_dataset(cfg, "all", train=True)
    for i in range(len(ds)):
        ds[i]
    assert STATS.videos_decoded == 4  # the four AVIs, once each (the PNG folder is read directly)
    ds.set_epoch(1)
    for i in range(len(ds)):
        ds[i]
    assert STATS.videos_decoded == 4
    fresh = build_dataset(cfg, "all", train=True)
    fresh[len(fresh) - 1], fresh[0]
    assert STATS.videos_decoded == 4 and STATS.cache_hits >= 4


def test_dataloader_batches_and_workers_match(tmp_path: Path, avi_folder: Path) -> None:
    ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), window=5), "all")
    batches0 = list(build_dataloader(ds, batch_size=4, num_workers=0))
    batches2 = list(build_dataloader(ds, batch_size=4, num_workers=2))
    assert len(batches0) == len(batches2) == 5
    b = batches0[0]
    assert b["frames"].shape == (4, 4, 3, 48, 64) and b["times"].shape == (4, 4) and b["timestep"].shape == (4,)
    assert isinstance(b["sample_id"], list) and b["target_index"].dtype == torch.int64
    for x, y in zip(batches0, batches2):
        assert x["sample_id"] == y["sample_id"]
        torch.testing.assert_close(x["frames"], y["frames"])


def test_bad_split_and_config(tmp_path: Path, avi_folder: Path) -> None:
    with pytest.raises(ValueError, match="split 'dev'"):
        build_dataset(data_cfg(tmp_path, data_root=str(avi_folder)), "dev")
    with pytest.raises(ValueError, match="unknown dataset 'vimeo90k'.*synthetic.*ucf101.*video_folder"):
        build_dataset(data_cfg(tmp_path, dataset="vimeo90k"), "train")
