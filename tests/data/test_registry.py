"""lift.data.registry: the dataset names, their lookup and build_dataset (the Registry mechanism
itself is tested in tests/test_registry.py)."""

from __future__ import annotations

import pytest

from lift.config import DataConfig
from lift.data.known_answer import KnownAnswerDataset
from lift.data.registry import DATASETS, available_datasets, build_dataset, get_dataset_class
from lift.registry import RegistryError


def test_every_builtin_dataset_is_registered_under_its_config_name() -> None:
    assert set(available_datasets()) >= {"vimeo", "ucf101", "ucf101_triplets", "x4k", "video_folder", "synthetic",
                                         "known_answer"}
    for name in available_datasets():
        assert DATASETS.get(name).name == name


def test_an_unknown_dataset_names_the_field_and_the_known_ones() -> None:
    with pytest.raises(RegistryError, match=r"data\.dataset.*'vimeo9k'.*known_answer"):
        get_dataset_class("vimeo9k", "data.dataset")


def test_build_dataset_builds_the_named_split() -> None:
    cfg = DataConfig(dataset="known_answer", window=7, temporal_offset=1, gap=2, crop_size=[32, 32],
                     frame_size=None, max_sequences=3)
    ds = build_dataset(cfg, "test")
    assert isinstance(ds, KnownAnswerDataset) and len(ds) == 3
    sample = ds[0]
    assert tuple(sample["frames"].shape) == (6, 3, 32, 32)
