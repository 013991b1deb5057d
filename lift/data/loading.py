"""DataLoaders: the training run's epoch-seeded sampler and loaders, and evaluation's collation.

Training draws its data order from :class:`EpochSampler` (a shuffle seeded by (seed, epoch)) and
wraps its dataset in :class:`EpochDataset`, so a resumed run sees the same batches and
augmentations per epoch as one that was never interrupted. Evaluation batches whole frames and
collates one batch per frame size (:func:`collate_by_size`).

Every loader is a :class:`Loader`: with workers, an input error raised inside a worker (a bad
video, a dataset problem) reaches the caller as the same exception, with the same one-line message,
as without workers, and a batch that takes longer than ``data.loader_timeout_s`` raises
:class:`LoaderStalledError` naming that key instead of hanging. Workers are forked: decoding
(lift.data.decode) leaves no FFmpeg thread behind, so a parent that decoded first forks safely.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from lift.config import Config
from lift.data.base import BaseVideoDataset, DatasetError
from lift.data.decode import BadVideoError
from lift.rng import mix_seed
from lift.window import WindowError

# Errors about the input data: the commands report them as one line, so they must cross from a
# worker to the main process unchanged.
INPUT_ERRORS = (BadVideoError, DatasetError, WindowError)


class LoaderStalledError(DatasetError):
    """No batch arrived from the DataLoader workers within ``data.loader_timeout_s``."""


@dataclass(frozen=True)
class WorkerFailure:
    """What a worker returns in place of a sample or batch whose loading raised an input error.

    Raising in the worker would reach the main process as torch's RuntimeError carrying the
    worker's traceback; returned, the error itself is pickled over and raised unchanged.
    """

    error: Exception


class _CatchInputErrors(Dataset):
    """A loader's dataset as its workers load it: an input error becomes a WorkerFailure item.
    Attributes (.spec, .name, .sequences, ...) are those of the wrapped dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.dataset[key]
        except INPUT_ERRORS as err:
            return WorkerFailure(err)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


class _CollateOrFailure:
    """Collates a batch, or passes on the first WorkerFailure among its samples (a class, not a
    closure, so that it pickles for any multiprocessing start method)."""

    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        failure = next((s for s in samples if isinstance(s, WorkerFailure)), None)
        return failure if failure is not None else self.collate(samples)


class Loader(DataLoader):
    """A DataLoader whose worker input errors and stalls read as one line, as in the main process.

    With workers, ``dataset`` is the caller's dataset wrapped so that the workers return input
    errors instead of raising them (its attributes are the caller's dataset's); ``__iter__`` raises
    them. ``timeout_key`` is the config key the stall message names.
    """

    def __init__(self, dataset: Dataset, *, timeout_key: str = "data.loader_timeout_s", **kwargs: Any) -> None:
        if kwargs.get("num_workers", 0) > 0:
            dataset = _CatchInputErrors(dataset)
            kwargs["collate_fn"] = _CollateOrFailure(kwargs.get("collate_fn") or default_collate)
        super().__init__(dataset, **kwargs)
        self.timeout_key = timeout_key

    def __iter__(self) -> Iterator[Any]:
        return self._unwrap(super().__iter__())

    def _unwrap(self, batches: Iterator[Any]) -> Iterator[Any]:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except RuntimeError as err:
                if self.timeout and str(err).startswith("DataLoader timed out"):
                    raise LoaderStalledError(
                        f"data loading stalled: no batch from the {self.num_workers} DataLoader workers in "
                        f"{self.timeout:g} s ({self.timeout_key}); raise {self.timeout_key} if one batch "
                        "legitimately takes longer") from None
                raise
            if isinstance(batch, WorkerFailure):
                raise batch.error
            yield batch


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
        kwargs.update(persistent_workers=True, prefetch_factor=d.prefetch_factor, worker_init_fn=worker_init,
                      timeout=d.loader_timeout_s)
    if not train:
        kwargs["collate_fn"] = collate_by_size
    return Loader(
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
        kwargs["timeout"] = cfg.loader_timeout_s
    return Loader(dataset, **kwargs)
