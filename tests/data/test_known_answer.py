"""The known-answer dataset: exact flows, an occluder at the anchors only, splits by source."""

from __future__ import annotations

import pytest
import torch

from lift.config import load_config
from lift.data import build_dataset
from lift.data.known_answer import MAX_SPEED, MIN_SPEED
from lift.model import backward_warp


def _cfg(window: int = 15, variant: str = "informative", **extra):
    overrides = {"data.dataset": "known_answer", "data.known_answer_variant": variant, "data.window": window,
                 "data.eval_max_window": 15, "data.frame_size": None, "data.crop_size": [32, 32],
                 "data.max_sequences": 4, "data.color_jitter": 0.0, "data.train_samples_per_epoch": None}
    overrides.update(extra)
    return load_config("smoke", overrides)


@pytest.mark.parametrize("split", ["train", "test"])
def test_exact_flow_aligns_every_input_that_sees_the_target(split):
    ds = build_dataset(_cfg().data, split)
    for i in range(len(ds)):
        s = ds[i]
        warped = backward_warp(s["frames"], s["flow_gt"])
        err = (warped - s["target"]).abs().mean(1, keepdim=True)
        assert float((err * s["valid"]).max()) < 1e-5
        speed = float(s["flow_gt"][0].norm(dim=0).max())  # anchor at one frame: the speed
        assert MIN_SPEED <= speed <= MAX_SPEED
        assert s["cluster_id"] == s["video_id"]


def test_hidden_region_is_hidden_in_both_anchors_and_seen_by_references():
    s = build_dataset(_cfg().data, "test")[0]
    hidden = s["hidden"][0, 0].bool()
    assert hidden.any()
    assert not s["valid"][0, 0][hidden].any() and not s["valid"][1, 0][hidden].any()
    # The nearest references (inputs 2 and 2 + K) show part of it, exactly aligned by the flow.
    assert (s["valid"][2:, 0][:, hidden].sum(0) > 0).float().mean() > 0.5
    # The anchors show something else there than the target.
    assert float((s["frames"][0] - s["target"]).abs().mean(0)[hidden].mean()) > 0.02


def test_uninformative_references_come_from_another_source():
    inf = build_dataset(_cfg().data, "test")[0]
    uni = build_dataset(_cfg(variant="uninformative").data, "test")[0]
    torch.testing.assert_close(inf["frames"][:2], uni["frames"][:2])
    torch.testing.assert_close(inf["target"], uni["target"])
    assert float((inf["frames"][2:] - uni["frames"][2:]).abs().mean()) > 0.05
    assert float(uni["valid"][2:].sum()) == 0.0


def test_every_window_trains_on_the_same_centre_targets_and_splits_are_by_source():
    w3 = build_dataset(_cfg(window=3).data, "train")
    w15 = build_dataset(_cfg(window=15).data, "train")
    assert len(w3) == len(w15) == 4  # one training position per source: its centre
    drawn = build_dataset(_cfg(window=3, **{"data.train_samples_per_epoch": 10}).data, "train")
    assert len(drawn) == 10 and {drawn[i]["target_index"] for i in range(10)} == {7}
    assert [w3[i]["target_index"] for i in range(4)] == [w15[i]["target_index"] for i in range(4)] == [7] * 4
    torch.testing.assert_close(w3[0]["frames"], w15[0]["frames"][:2])
    train_ids = {w15[i]["cluster_id"].split("-")[1][len("train"):] for i in range(4)}
    test = build_dataset(_cfg().data, "test")
    assert all(test[i]["cluster_id"].startswith("informative-test") for i in range(len(test)))
    assert train_ids  # sources are per split: different seeds (SPLIT_SEEDS)
    assert float((w15[0]["target"] - test[0]["target"]).abs().mean()) > 0.02


def test_gap_other_than_two_is_an_error_naming_the_field():
    with pytest.raises(ValueError, match="data.gap=4"):
        build_dataset(_cfg(**{"data.gap": 4}).data, "train")
