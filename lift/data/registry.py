"""Dataset registry: `get_dataset_class(name)` and `build_dataset(data_cfg, split)`."""

from __future__ import annotations

import importlib

from lift.config import DataConfig
from lift.data.base import BaseVideoDataset

_REGISTRY: dict[str, type[BaseVideoDataset]] = {}
# Imported on first lookup so that `import lift.data` stays cheap and free of import cycles.
_BUILTIN_MODULES = ("lift.data.vimeo", "lift.data.ucf101", "lift.data.x4k", "lift.data.video_folder",
                    "lift.data.synthetic", "lift.data.known_answer")


def register_dataset(cls: type[BaseVideoDataset]) -> type[BaseVideoDataset]:
    """Class decorator: make `cls` available under `cls.name`."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"dataset name {cls.name!r} is already registered by {existing.__module__}.{existing.__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_datasets() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_dataset_class(name: str) -> type[BaseVideoDataset]:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_REGISTRY))}") from None


def build_dataset(data_cfg: DataConfig, split: str, *, train: bool | None = None, seed: int = 0) -> BaseVideoDataset:
    """The dataset named by `data_cfg.dataset` for `split` ("train", "val", "test" or "all").

    `train` defaults to ``split == "train"``: random augmented windows; otherwise the deterministic
    evaluation windows. `seed` seeds the training draws.
    """
    return get_dataset_class(data_cfg.dataset)(data_cfg, split, train=train, seed=seed)
