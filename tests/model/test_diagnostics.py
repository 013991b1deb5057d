"""Reference-path diagnostics: keys, ranges, and the zero-initialised refinement's starting point."""

from __future__ import annotations

import dataclasses

import torch

from lift.config import ModelConfig
from lift.model import build_model
from lift.model.diagnostics import reference_diagnostics, reference_share_image

TINY = ModelConfig(width=0.125, block_depth=1)


def _batch(make_window, window: int) -> dict[str, torch.Tensor]:
    wins = [make_window(window, velocity=v, seed=i) for i, v in enumerate([(2, 1), (-1, 2)])]
    return {"frames": torch.stack([w.frames for w in wins]), "times": torch.stack([w.times for w in wins]),
            "timestep": torch.stack([w.timestep for w in wins]), "target": torch.stack([w.target for w in wins]),
            "flow_gt": torch.stack([w.flow_gt for w in wins]), "valid": torch.stack([w.valid for w in wins])}


def test_untrained_reference_flows_are_the_extrapolated_ones_without_matching(make_window):
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(TINY, reference_matching=False), 7)
    batch = _batch(make_window, 7)
    _, aux = model(batch["frames"], batch["times"], batch["timestep"], batch["target"])
    diag = reference_diagnostics(aux, batch)
    assert set(diag) == {"share", "share_anchors_disagree", "anchors_disagree_fraction", "flow_magnitude",
                         "flow_epe", "flow_epe_extrapolated"}
    # The refinement head starts at zero and nothing else moves the start (with matching on, the
    # search does: tests/model/test_network.py): refined == extrapolated, so both errors are equal.
    assert diag["flow_epe"] == diag["flow_epe_extrapolated"] > 0
    assert 0 < diag["share"] < 0.5  # the reference prior starts low
    assert diag["flow_magnitude"] > 0
    image = reference_share_image(aux)
    assert image is not None and image.shape == (3, 32, 32) and float(image.min()) >= 0


def test_window3_has_no_reference_diagnostics(make_window):
    model = build_model(TINY, 3)
    batch = _batch(make_window, 3)
    _, aux = model(batch["frames"], batch["times"], batch["timestep"], batch["target"])
    assert reference_diagnostics(aux, batch) == {}
    assert reference_share_image(aux) is None
