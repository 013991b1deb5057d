"""DataLoaders: the training run's epoch-seeded sampler and loaders, and evaluation's collation.

Training draws its data order from :class:`EpochSampler` (a shuffle seeded by (seed, epoch)) and
wraps its dataset in :class:`EpochDataset`, so a resumed run sees the same batches and
augmentations per epoch as one that was never interrupted. Evaluation batches whole frames and
collates one batch per frame size (:func:`collate_by_size`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from lift.config import Config
from lift.data.base import BaseVideoDataset
from lift.rng import mix_seed


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled order drawn from (seed, epoch): a resumed run sees the same batches per epoch.

    Yields (epoch, index) pairs for EpochDataset: the epoch travels with every index, so dataset
    copies inside persistent DataLoader workers draw that epoch's augmentations too (their own
    `set_epoch` would never hear of a call made in the main process).
    """

    def __init__(self, length: int, seed: int, shuffle: bool = True) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(mix_seed(self.seed, self.epoch, 0x5A3))
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        return iter([(self.epoch, i) for i in order])

    def __len__(self) -> int:
        return self.length


class EpochDataset(Dataset):
    """Wraps a training dataset: item (epoch, index) -> dataset.set_epoch(epoch); dataset[index]."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        if isinstance(key, tuple):
            epoch, index = key
            if epoch != self._epoch and hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            self._epoch = epoch
            key = index
        return self.dataset[key]

    def __getattr__(self, name: str) -> Any:  # .spec, .name, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def collate_by_size(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Collate dataset samples into one batch per frame size (order kept within each size).

    Evaluation uses whole frames and a dataset may mix videos of different sizes; the evaluation
    loops accept a list of batches in place of one batch.
    """
    groups: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample["target"].shape), []).append(sample)
    return [default_collate(group) for group in groups.values()]


def worker_init(worker_id: int) -> None:
    """DataLoader seeds torch in each worker (base_seed + worker_id); numpy and random follow it so
    augmentations drawn from either are reproducible too."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, cfg: Config, *, train: bool, batch_size: int | None = None,
                sampler: Sampler | None = None, device: torch.device | None = None) -> DataLoader:
    """DataLoader with the config's workers/prefetching; seeded so worker RNGs are reproducible.

    Evaluation loaders (`train=False`) collate with :func:`collate_by_size` (a list of batches).
    """
    d = cfg.data
    workers = d.num_workers
    g = torch.Generator()
    g.manual_seed(mix_seed(cfg.train.seed, 1 if train else 2))
    bs = batch_size or (cfg.train.batch_size if train else cfg.train.eval_batch_size)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=d.prefetch_factor, worker_init_fn=worker_init)
    if not train:
        kwargs["collate_fn"] = collate_by_size
    return DataLoader(
        dataset,
        batch_size=bs,
        sampler=sampler,
        num_workers=workers,
        pin_memory=bool(d.pin_memory and device is not None and device.type == "cuda"),
        drop_last=bool(train and len(dataset) >= bs),
        generator=g,
        **kwargs,
    )


def build_dataloader(dataset: BaseVideoDataset, *, batch_size: int, shuffle: bool | None = None,
                     num_workers: int | None = None, drop_last: bool | None = None, seed: int = 0,
                     pin_memory: bool | None = None) -> DataLoader:
    """A DataLoader with the dataset's config defaults: shuffled + drop_last for training, seeded order.

    Workers are not persistent, so each epoch's workers see the epoch set by ``set_epoch``.
    """
    cfg = dataset.cfg
    workers = cfg.num_workers if num_workers is None else num_workers
    kwargs: dict[str, Any] = {
        "batch_size": batch_size,
        "shuffle": dataset.train if shuffle is None else shuffle,
        "drop_last": dataset.train if drop_last is None else drop_last,
        "num_workers": workers,
        "pin_memory": (cfg.pin_memory if pin_memory is None else pin_memory) and torch.cuda.is_available(),
        "generator": torch.Generator().manual_seed(seed),
    }
    if workers > 0:
        kwargs["prefetch_factor"] = cfg.prefetch_factor
        kwargs["persistent_workers"] = False
    return DataLoader(dataset, **kwargs)
