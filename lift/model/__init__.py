"""LIFT network and losses.

``build_model(model_cfg, window)`` builds the network named by ``model_cfg.name`` (the registry
``MODELS``, lift.model.registry); ``LIFTLoss(loss_cfg)`` is the training objective.
"""

from __future__ import annotations

from typing import Any

from lift.config import ModelConfig
from lift.model import pretrained
from lift.model.losses import LIFTLoss
from lift.model.network import LIFT, extrapolate_flows
from lift.model.padding import InputPadder
from lift.model.registry import MODELS, get_model_class, register_model
from lift.model.warp import backward_warp


def model_args(model_cfg: ModelConfig, window: int) -> dict[str, Any]:
    """Constructor arguments of the network `model_cfg` names, for `window` frames (a checkpoint
    stores them next to the config, as nanoGPT's ``model_args``)."""
    return get_model_class(model_cfg.name, "model.name").config_args(model_cfg, window)


def build_model(model_cfg: ModelConfig, window: int) -> LIFT:
    """The network for `window` frames (3 = RIFE-style control arm, > 3 adds the reference path),
    with the published weights in its anchor path when ``model.pretrained`` names them, and that
    path frozen with ``model.freeze_backbone``."""
    model = get_model_class(model_cfg.name, "model.name")(**model_args(model_cfg, window))
    if model_cfg.pretrained is not None:
        model.load_backbone(pretrained.load_state_dict(model_cfg.pretrained))
    if model_cfg.freeze_backbone:
        for param in model.backbone_parameters():
            param.requires_grad_(False)
    return model


__all__ = ["LIFT", "InputPadder", "LIFTLoss", "MODELS", "backward_warp", "build_model", "extrapolate_flows",
           "get_model_class", "model_args", "register_model"]
