"""Checkpoints of lift.train: atomic writes, safe loading, and the trained network they hold.

A checkpoint is one ``torch.save`` of a dict with ``format`` (:data:`CHECKPOINT_FORMAT`), the
network's ``model`` state_dict and ``model_args`` (its constructor arguments, as nanoGPT stores
them), the resolved ``config``, and the trainer's state (optimizer, scaler, epoch, step, RNG
states). It is loaded with ``torch.load(weights_only=True)``: a file that needs arbitrary
unpickling is refused, since unpickling could run code it carries.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lift.atomic import atomic_path
from lift.config import Config, ConfigError, config_from_dict
from lift.model import build_model, get_model_class

CHECKPOINT_FORMAT = "lift-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, or not a LIFT checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (lift.atomic): a process killed mid-write leaves the previous checkpoint
    at `path` intact."""
    path = Path(path)
    # A run is the only writer of its checkpoints: temporaries of this target left by a killed
    # write are stale (lift.atomic).
    # Serialised in memory first: torch.save writing to a full disk reports only "unexpected pos",
    # a plain write reports ENOSPC, which lift.atomic turns into one line naming the folder.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path, clean_stale=True) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return path


def atomic_copy(src: Path, dst: Path) -> None:
    """dst becomes a copy of src, atomically. A hard link costs nothing: later saves of src replace
    its directory entry with a new file, so dst keeps the old content."""
    with atomic_path(dst, durable=False, clean_stale=True) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


def _load_failure(err: BaseException) -> str:
    """Why torch.load refused a file, in one line, without torch's advice to retry with
    weights_only=False (that would run whatever code the file carries)."""
    if isinstance(err, pickle.UnpicklingError):
        boilerplate = ("weights only", "weights_only", "please file an issue", "check the documentation")
        detail = [line.strip() for line in str(err).splitlines()
                  if line.strip() and not any(b in line.lower() for b in boilerplate)]
        what = f" ({detail[0].rstrip('.')})" if detail else ""
        return (f"it is not a plain tensor checkpoint{what}; such files are refused, since unpickling them "
                "could run code they carry")
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {reason.split('. ')[0].rstrip('.')} (truncated or not a checkpoint?)"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a LIFT checkpoint safely (torch.load with weights_only=True) onto the CPU."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; expected a checkpoint file such as "
                              "<run>/checkpoints/best.pt")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle: say which file and why
        raise CheckpointError(f"cannot load checkpoint {path}: {_load_failure(err)}; expected a checkpoint "
                              "written by lift.train") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not a LIFT training checkpoint: expected format "
                              f"{CHECKPOINT_FORMAT!r}, found {found!r}")
    return state


def config_from_checkpoint(state: dict[str, Any]) -> Config:
    """The resolved config saved in a checkpoint (ConfigError if it is missing or invalid)."""
    values = state.get("config")
    if not isinstance(values, dict):
        raise ConfigError(f"'config' holds {type(values).__name__}, expected the run's config mapping")
    return config_from_dict(values)


def _build_network(path: Path, state: dict[str, Any], cfg: Config) -> nn.Module:
    """The untrained network of a checkpoint: from its ``model_args``; checkpoints written before
    ``model_args`` existed rebuild it from their config."""
    args = state.get("model_args")
    try:
        if args is None:
            return build_model(cfg.model, cfg.data.window)
        if not isinstance(args, dict):
            raise ValueError(f"'model_args' holds {type(args).__name__}, expected the constructor's arguments")
        return get_model_class(cfg.model.name, "model.name")(**args)
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {path}: cannot build model {cfg.model.name!r}: {err}") from err


def _check_weights(path: Path, weights: dict[str, Any], model: nn.Module, cfg: Config) -> None:
    """Refuse weights that do not fit `model`, with the counts of missing, unexpected and reshaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    reshaped = sorted(k for k in set(weights) & set(expected)
                      if not isinstance(weights[k], torch.Tensor) or weights[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        example = (missing + unexpected + reshaped)[0]
        raise CheckpointError(
            f"checkpoint {path} does not match the architecture its config describes "
            f"(model={cfg.model.name}, window={cfg.data.window}, width={cfg.model.width}): "
            f"{len(missing)} missing, {len(unexpected)} unexpected and {len(reshaped)} mismatched-shape keys "
            f"(e.g. {example!r}); it was written for another architecture")


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """The trained network (eval mode, frozen, on `device`) and the resolved config it was trained
    with. A checkpoint whose weights do not fit the architecture it describes is refused with the
    counts of missing, unexpected and reshaped keys."""
    path = Path(path)
    state = load_checkpoint(path)
    try:
        cfg = config_from_checkpoint(state)
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path}: its config is invalid: {err}") from err
    model = _build_network(path, state, cfg)
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"checkpoint {path}: 'model' holds {type(weights).__name__}, expected a state_dict")
    # Weights saved from a torch.compile'd module carry this prefix.
    weights = {k.removeprefix("_orig_mod."): v for k, v in weights.items()}
    _check_weights(path, weights, model, cfg)
    model.load_state_dict(weights)
    model.eval().requires_grad_(False)
    return model.to(torch.device(device)), cfg
