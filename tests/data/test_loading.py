"""lift.data.loading: epoch-seeded order, the epoch reaching persistent workers, collation by size."""

from __future__ import annotations

from typing import Any

import torch

from lift.config import load_config
from lift.data.loading import EpochDataset, EpochSampler, collate_by_size, make_loader


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
