"""lift.devices: one resolver, errors that name the setting and the value."""

from __future__ import annotations

import pytest
import torch

from lift.config import ConfigError
from lift.devices import autocast_dtype, resolve_device


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


def test_autocast_policies_on_cpu() -> None:
    cpu = torch.device("cpu")
    # training honours an explicit dtype on any device; auto is full precision on CPU
    assert autocast_dtype("auto", cpu, "training") is None
    assert autocast_dtype("fp16", cpu, "training") is torch.float16
    assert autocast_dtype("bf16", cpu, "training") is torch.bfloat16
    # evaluation is always full precision on CPU
    assert all(autocast_dtype(m, cpu, "evaluation") is None for m in ("auto", "bf16", "fp16", "off"))
    # inference: bf16 on request, auto is off on CPU, fp16 not offered
    assert autocast_dtype("bf16", cpu, "inference") is torch.bfloat16
    assert autocast_dtype("auto", cpu, "inference") is None
    with pytest.raises(ConfigError, match=r"--amp: got 'fp16'; expected auto, bf16, off"):
        autocast_dtype("fp16", cpu, "inference", "--amp")
    with pytest.raises(ValueError, match="autocast purpose 'serving'"):
        autocast_dtype("auto", cpu, "serving")
