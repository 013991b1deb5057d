"""lift.devices: one resolver, errors that name the setting and the value."""

from __future__ import annotations

import pytest
import torch

from lift.config import ConfigError
from lift.devices import resolve_device


def test_auto_and_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "meta"])
def test_unknown_devices_name_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"train.device: got '{name}'; expected auto, cpu, cuda or cuda:N"):
        resolve_device(name, "train.device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_fails_at_once() -> None:
    with pytest.raises(ConfigError, match="--device: got 'cuda'; CUDA is not available"):
        resolve_device("cuda", "--device")
