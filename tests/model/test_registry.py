"""lift.model.registry: models are found by their config name (the Registry mechanism itself is
tested in tests/test_registry.py)."""

from __future__ import annotations

import pytest

from lift.config import ModelConfig
from lift.model import LIFT, build_model
from lift.model.registry import MODELS, get_model_class
from lift.registry import RegistryError


def test_lift_is_registered_under_its_config_name() -> None:
    assert get_model_class(ModelConfig().name) is LIFT and "lift" in MODELS.names()


def test_build_model_resolves_the_name_through_the_registry() -> None:
    model = build_model(ModelConfig(width=0.125, block_depth=1), window=3)
    assert isinstance(model, LIFT)
    with pytest.raises(RegistryError, match=r"model\.name.*'rife'.*lift"):
        build_model(ModelConfig(name="rife"), window=3)
