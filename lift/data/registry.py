"""The dataset registry (:class:`lift.registry.Registry`): ``@register_dataset`` on a dataset class,
``get_dataset_class(name)`` and ``build_dataset(data_cfg, split)``."""

from __future__ import annotations

from lift.config import DataConfig
from lift.data.base import BaseVideoDataset
from lift.registry import Registry

# The built-in datasets register themselves when their modules are imported: on the first lookup.
DATASETS: Registry[type[BaseVideoDataset]] = Registry(
    "dataset", builtin_modules=("lift.data.vimeo", "lift.data.ucf101", "lift.data.x4k", "lift.data.video_folder",
                                "lift.data.synthetic", "lift.data.known_answer"))
register_dataset = DATASETS.register
get_dataset_class = DATASETS.get
available_datasets = DATASETS.names


def build_dataset(data_cfg: DataConfig, split: str, *, train: bool | None = None, seed: int = 0) -> BaseVideoDataset:
    """The dataset named by `data_cfg.dataset` for `split` ("train", "val", "test" or "all").

    `train` defaults to ``split == "train"``: random augmented windows; otherwise the deterministic
    evaluation windows. `seed` seeds the training draws.
    """
    return get_dataset_class(data_cfg.dataset)(data_cfg, split, train=train, seed=seed)
