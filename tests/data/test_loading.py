"""lift.data.loading: epoch-seeded order, the epoch reaching persistent workers, collation by size;
workers forked after the parent decoded, worker errors as one line, stalled workers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from lift.config import load_config
from lift.data import BadVideoError, build_dataloader, build_dataset
from lift.data.decode import decode_video
from lift.data.loading import (
    EpochDataset,
    EpochSampler,
    LoaderStalledError,
    collate_by_size,
    make_loader,
)

from .conftest import cut_at_packet, data_cfg


class _EpochProbe(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.epoch = -1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"epoch": self.epoch, "i": i, "target": torch.zeros(1)}


def test_persistent_workers_see_each_epoch() -> None:
    cfg = load_config("smoke", {"data.num_workers": 1, "train.batch_size": 2})
    sampler = EpochSampler(4, seed=0)
    loader = make_loader(EpochDataset(_EpochProbe()), cfg, train=True, sampler=sampler)
    assert loader.persistent_workers
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        items = [(int(e), int(i)) for b in loader for e, i in zip(b["epoch"], b["i"])]
        assert {e for e, _ in items} == {epoch}
        orders.append([i for _, i in items])
    assert sorted(orders[0]) == [0, 1, 2, 3]
    sampler.set_epoch(1)
    assert [i for _, i in sampler] == orders[1]  # the order is a function of (seed, epoch)


def test_the_order_depends_on_seed_and_epoch_only() -> None:
    a, b = EpochSampler(50, seed=3), EpochSampler(50, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and all(e == 2 for e, _ in a)
    b.set_epoch(3)
    assert [i for _, i in a] != [i for _, i in b]
    assert [i for _, i in EpochSampler(5, seed=0, shuffle=False)] == [0, 1, 2, 3, 4]


def test_collate_by_size_keeps_order_within_each_size() -> None:
    def sample(h: int, k: int) -> dict[str, Any]:
        return {"target": torch.full((3, h, 8), float(k)), "k": k}

    batches = collate_by_size([sample(4, 0), sample(6, 1), sample(4, 2), sample(6, 3)])
    assert [tuple(b["target"].shape) for b in batches] == [(2, 3, 4, 8), (2, 3, 6, 8)]
    assert [b["k"].tolist() for b in batches] == [[0, 2], [1, 3]]


def test_evaluation_loaders_collate_by_size() -> None:
    cfg = load_config("smoke", {"train.eval_batch_size": 3})
    loader = make_loader([{"target": torch.zeros(3, 4, 4)}, {"target": torch.zeros(3, 2, 2)}], cfg, train=False)
    assert loader.collate_fn is collate_by_size and loader.batch_size == 3
    assert [b["target"].shape[-1] for b in next(iter(loader))] == [4, 2]


@pytest.mark.timeout(120)
def test_workers_forked_after_the_parent_decoded_complete(tmp_path: Path, avi_folder: Path) -> None:
    # The parent decodes and rescales first (as `bench data` warms up); FFmpeg's scaler threads do
    # not survive fork, so a worker that inherited them hung for ever at its first rescale.
    decode_video(avi_folder / "alpha.avi", (24, 32))
    cfg = data_cfg(tmp_path, data_root=str(avi_folder), frame_size=[40, 56], crop_size=[32, 32],
                   cache_frames=False, train_samples_per_epoch=16)
    ds = build_dataset(cfg, "all", train=True)
    for _ in range(2):  # non-persistent workers: each epoch forks again, after more parent decoding
        batches = list(build_dataloader(ds, batch_size=4, num_workers=2))
        assert sum(b["frames"].shape[0] for b in batches) == 16
        assert batches[0]["frames"].shape[-2:] == (32, 32)
        decode_video(avi_folder / "bravo.avi", (36, 48))


def _bad_video_error(tmp_path: Path, root: Path, workers: int, builder: str) -> BadVideoError:
    cfg = data_cfg(tmp_path, data_root=str(root), cache_frames=False, num_workers=workers)
    ds = build_dataset(cfg, "all", train=False)
    if builder == "make_loader":
        loader = make_loader(ds, load_config("smoke", {"data.num_workers": workers}), train=False, batch_size=2)
    else:
        loader = build_dataloader(ds, batch_size=2, num_workers=workers)
    with pytest.raises(BadVideoError) as info:
        for _ in loader:
            pass
    return info.value


@pytest.mark.timeout(120)
@pytest.mark.parametrize("builder", ["make_loader", "build_dataloader"])
def test_a_bad_video_in_a_worker_reads_as_in_the_main_process(tmp_path: Path, avi_copy: Path,
                                                              builder: str) -> None:
    cut_at_packet(avi_copy / "bravo.avi", 10)  # the header still declares 24 frames
    in_process = _bad_video_error(tmp_path, avi_copy, 0, builder)
    in_worker = _bad_video_error(tmp_path, avi_copy, 2, builder)
    assert type(in_worker) is BadVideoError
    assert (in_worker.path, in_worker.reason) == (in_process.path, in_process.reason)
    assert str(in_worker) == str(in_process)
    assert "\n" not in str(in_worker) and "Caught" not in str(in_worker)
    assert str(in_worker).startswith(str(avi_copy / "bravo.avi") + ": the container declares 24 frames")


class _Stalls(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> dict[str, Any]:
        time.sleep(3)
        return {"target": torch.zeros(1)}


@pytest.mark.timeout(60)
def test_a_stalled_worker_is_an_error_naming_the_timeout_key() -> None:
    cfg = load_config("smoke", {"data.num_workers": 1, "data.loader_timeout_s": 0.5, "train.batch_size": 1})
    loader = make_loader(_Stalls(), cfg, train=True)
    assert loader.timeout == 0.5
    with pytest.raises(LoaderStalledError, match=r"no batch from the 1 DataLoader workers in 0.5 s "
                                                 r"\(data.loader_timeout_s\)"):
        next(iter(loader))
