"""Image panels: shapes, value range, temporal ordering and the flow colour coding."""

from __future__ import annotations

import pytest
import torch

from lift.logging import visualization as vis


def _batch(b: int = 2, n: int = 4, h: int = 16, w: int = 20) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "frames": torch.rand(b, n, 3, h, w, generator=g),
        # anchors first, then references (WindowSpec order): times are not sorted
        "times": torch.tensor([[0.0, 1.0, -1.0, 2.0]] * b)[:, :n],
        "target": torch.rand(b, 3, h, w, generator=g),
        "timestep": torch.full((b,), 0.5),
    }


def _grid_size(rows: int, cols: int, h: int, w: int, pad: int = 2) -> tuple[int, int]:
    return rows * (h + pad) + pad, cols * (w + pad) + pad


def test_prediction_vs_target_layout_and_range() -> None:
    b = _batch()
    img = vis.prediction_vs_target(b["target"] * 1.5 - 0.2, b["target"], num=2)
    assert img.shape == (3, *_grid_size(2, 3, 16, 20))
    assert img.min() >= 0 and img.max() <= 1


def test_error_map_is_zero_for_a_perfect_prediction_and_bright_for_a_bad_one() -> None:
    b = _batch(b=1)
    perfect = vis.error_map(b["target"], b["target"], num=1)
    bad = vis.error_map(1 - b["target"], b["target"], num=1)
    inner = (slice(None), slice(2, -2), slice(2, -2))
    assert perfect[inner].mean() < 0.05  # the colormap's dark end
    assert bad[inner].mean() > perfect[inner].mean() + 0.2


def test_window_strip_orders_frames_by_time_and_inserts_the_target() -> None:
    b = _batch(b=1, n=4, h=8, w=8)
    # make every frame a constant colour equal to its time so the order is readable back
    for j, t in enumerate(b["times"][0].tolist()):
        b["frames"][0, j] = (t + 1) / 4
    b["target"][0] = 0.99
    img = vis.window_strip(b["frames"], b["times"], b["target"], b["timestep"], num=1)
    assert img.shape == (3, *_grid_size(1, 5, 8, 8))
    centres = [float(img[0, 2 + 4, 2 + c * 10 + 4]) for c in range(5)]
    # times -1, 0, 0.5 (target), 1, 2
    assert centres == pytest.approx([0.0, 0.25, 0.99, 0.5, 0.75], abs=1e-6)


def test_flow_images_use_flow_to_image_colours() -> None:
    flows = torch.zeros(1, 2, 2, 8, 8)
    flows[0, 1, 0] = 3.0  # second input: uniform flow to the right
    img = vis.flow_images(flows, num=1)
    zero_tile = img[:, 2:10, 2:10]
    moving_tile = img[:, 2:10, 12:20]
    assert torch.allclose(zero_tile, torch.ones_like(zero_tile))  # no motion is white in the Middlebury wheel
    assert not torch.allclose(moving_tile, torch.ones_like(moving_tile))


def test_fusion_weights_render_each_input_as_gray_levels() -> None:
    w = torch.zeros(1, 3, 1, 4, 4)
    w[0, 0] = 1.0
    img = vis.fusion_weight_images(w, torch.tensor([[0.0, 1.0, -1.0]]), num=1)
    # ordered by time: input 2 (t=-1, weight 0), input 0 (t=0, weight 1), input 1 (weight 0)
    assert float(img[0, 4, 2 + 6 + 2]) == 1.0
    assert float(img[0, 4, 4]) == 0.0


def test_training_images_skips_missing_aux_and_includes_ground_truth_flow() -> None:
    b = _batch()
    b["flow_gt"] = torch.randn(2, 4, 2, 16, 20)
    aux = {"flows": torch.randn(2, 4, 2, 16, 20), "fusion_weights": torch.softmax(torch.randn(2, 4, 1, 16, 20), 1)}
    panels = vis.training_images(b, b["target"], aux, num=5)
    assert set(panels) == {"prediction_vs_target", "error_map", "window", "flows", "flows_ground_truth",
                           "fusion_weights"}
    del b["flow_gt"]
    assert set(vis.training_images(b, b["target"], {}, num=1)) == {"prediction_vs_target", "error_map", "window"}


def test_bad_shapes_name_the_argument() -> None:
    with pytest.raises(ValueError, match="flows"):
        vis.flow_images(torch.zeros(1, 2, 3, 4, 4))
    with pytest.raises(ValueError, match="pred"):
        vis.prediction_vs_target(torch.zeros(3, 4, 4), torch.zeros(1, 3, 4, 4))
