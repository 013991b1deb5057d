"""Which torch device a setting names, and which autocast precision a purpose runs in: one resolver
for training, evaluation, inference and benchmarks."""

from __future__ import annotations

import contextlib

import torch

from lift.config import ConfigError


def resolve_device(name: str, setting: str = "device") -> torch.device:
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`; an error names `setting`.

    Asking for CUDA on a machine without it is an error here rather than a failure deep inside the
    first kernel launch.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{setting}: got {name!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{setting}: got {name!r}; expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{setting}: got {name!r}; CUDA is not available on this machine (use auto or cpu)")
    return device


# Autocast modes each purpose accepts (the inference CLIs offer no fp16: it needs loss scaling
# only for training, and bf16 keeps fp32's range).
AMP_MODES = {"training": ("auto", "bf16", "fp16", "off"), "evaluation": ("auto", "bf16", "fp16", "off"),
             "inference": ("auto", "bf16", "off")}


def autocast_dtype(mode: str, device: torch.device, purpose: str, setting: str = "train.amp") -> torch.dtype | None:
    """The autocast dtype of `mode` for `purpose` on `device` (None = full precision).

    The policies differ by purpose, on purpose:

    - training: ``auto`` is bf16 on GPUs that support it, fp16 (which the trainer pairs with a
      gradient scaler) on older GPUs, off on CPU where autocast rarely pays off; ``bf16`` and
      ``fp16`` are honoured on any device, and bf16 on a GPU without it is an error.
    - evaluation: as training on GPUs, but always full precision on CPU: the metrics are the
      study's figures, and CPU autocast would change them for no speed.
    - inference (lift.interpolate, lift.bench): ``auto`` is bf16 on GPUs that support it and full
      precision elsewhere; fp16 is not offered.

    An unknown mode raises ConfigError naming `setting`.
    """
    if purpose not in AMP_MODES:
        raise ValueError(f"autocast purpose {purpose!r}: expected one of {', '.join(AMP_MODES)}")
    if mode not in AMP_MODES[purpose]:
        raise ConfigError(f"{setting}: got {mode!r}; expected {', '.join(AMP_MODES[purpose])}")
    cuda = device.type == "cuda"
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if mode == "off" or (purpose == "evaluation" and not cuda):
        return None
    if mode == "bf16":
        if purpose == "training" and cuda and not bf16_ok:
            raise ConfigError(f"{setting}: got 'bf16'; {torch.cuda.get_device_name(device)} does not support "
                              "bfloat16 (use fp16 or auto)")
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if purpose == "inference":
        return torch.bfloat16 if bf16_ok else None
    if not cuda:
        return None
    return torch.bfloat16 if bf16_ok else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None, cache_enabled: bool = True
             ) -> contextlib.AbstractContextManager:
    """torch.autocast to `dtype` on `device`; no autocast when `dtype` is None (full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache_enabled)
