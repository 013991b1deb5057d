"""The model registry (:class:`lift.registry.Registry`): ``@register_model`` on a network class
(named by its ``name`` attribute; ``model.name`` in the config selects it)."""

from __future__ import annotations

from torch import nn

from lift.registry import Registry

MODELS: Registry[type[nn.Module]] = Registry("model")
register_model = MODELS.register
get_model_class = MODELS.get
