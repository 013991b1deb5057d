"""LIFT network and losses.

``build_model(model_cfg, window)`` builds the network named by ``model_cfg.name`` (the registry
``MODELS``, lift.model.registry); ``LIFTLoss(loss_cfg)`` is the training objective.
"""

from __future__ import annotations

from lift.config import ModelConfig
from lift.model.losses import LIFTLoss
from lift.model.network import LIFT, crop_to, extrapolate_flows, pad_to_multiple
from lift.model.registry import MODELS, get_model_class, register_model
from lift.model.warp import backward_warp


def build_model(model_cfg: ModelConfig, window: int) -> LIFT:
    """The network for `window` frames (3 = RIFE-style control arm, > 3 adds the reference path)."""
    return get_model_class(model_cfg.name, "model.name").from_config(model_cfg, window)


__all__ = ["LIFT", "LIFTLoss", "MODELS", "backward_warp", "build_model", "crop_to", "extrapolate_flows",
           "get_model_class", "pad_to_multiple", "register_model"]
