"""Which torch device a setting names: one resolver for training, evaluation, inference and benchmarks."""

from __future__ import annotations

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
