"""`python -m lift.bench context --quick`: a few steps of both windows on known-answer data."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from lift.bench.__main__ import main as bench_main


def test_context_bench_prints_and_writes_both_windows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "context.json"
    assert bench_main(["context", "--quick", "--device", "cpu", "--variant", "both", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [(r["variant"], r["seed"]) for r in records] == [("informative", 0), ("uninformative", 0)]
    for rec in records:
        assert rec["bench"] == "context" and rec["steps"] == 3 and rec["test_samples"] == 4
        assert rec["gain_db"] == pytest.approx(rec["psnr_w15"] - rec["psnr_w3"])
        assert 0.0 < rec["share_hidden"] < 1.0 and 0.0 < rec["share_outside"] < 1.0
        assert 0.0 < rec["share_both_anchors"] < 1.0
        # After 3 steps no anchor flow may be right yet: then there is no such pixel to average over.
        assert rec["share_anchors_right"] is None or 0.0 < rec["share_anchors_right"] < 1.0
        assert 0.0 <= rec["anchors_right_fraction_w3"] <= 1.0 and 0.0 <= rec["anchors_right_fraction_w15"] <= 1.0
        assert rec["anchor_epe_w3"] > 0 and rec["anchor_epe_w15"] > 0
        assert all(math.isfinite(rec[f"psnr_{r}_w{w}"]) for r in ("hidden", "outside") for w in (3, 15))
        assert rec["train_s_w3"] > 0 and rec["train_s_w15"] > 0
    informative = records[0]
    for ref in ("nearest", "farthest"):
        for region in ("", "_hidden"):  # where the anchors show the pixel, and where only the references do
            refined = informative[f"epe_{ref}_refined{region}"]
            extrapolated = informative[f"epe_{ref}_extrapolated{region}"]
            assert math.isfinite(refined) and math.isfinite(extrapolated)
    # Unrelated references have no exact flow: no EPE for the uninformative variant.
    assert records[1]["epe_nearest_refined"] is None
    printed = capsys.readouterr().out
    assert "psnr_w15" in printed and "share_hidden" in printed


def test_summary_over_seeds_counts_the_seeds_that_reach_2db() -> None:
    from lift.bench.context import summarize

    rows = [{"bench": "context", "variant": "informative", "gain_db": g, "share_hidden": 0.6, "share_outside": 0.1,
             "share_both_anchors": b, "share_anchors_right": r}
            for g, b, r in ((1.0, 0.1, None), (2.5, 0.2, 0.05), (3.5, 0.3, 0.15))]
    (summary,) = summarize(rows)
    assert summary["share_both_anchors_mean"] == pytest.approx(0.2)
    assert summary["share_anchors_right_mean"] == pytest.approx(0.1)  # over the seeds that have such pixels
    assert summary["seeds"] == 3 and summary["seeds_gain_ge_2db"] == 2
    assert summary["gain_db_mean"] == pytest.approx(7.0 / 3)
    assert summary["gain_db_sd"] == pytest.approx(statistics.stdev([1.0, 2.5, 3.5]))
    assert (summary["gain_db_min"], summary["gain_db_max"]) == (1.0, 3.5)


def test_set_overrides_reach_both_windows_and_bad_keys_are_errors() -> None:
    import argparse

    from lift.bench.context import add_arguments, context_config
    from lift.config import ConfigError

    args = add_arguments(argparse.ArgumentParser()).parse_args(["--set", "optim.grad_clip=0", "--set", "optim.lr=5e-4"])
    for window in (3, 15):
        cfg = context_config(window, "informative", 0, args)
        assert (cfg.optim.grad_clip, cfg.optim.lr, cfg.data.dataset) == (0.0, 5e-4, "known_answer")
    bad = add_arguments(argparse.ArgumentParser()).parse_args(["--set", "optim.no_such_key=1"])
    with pytest.raises(ConfigError, match="no_such_key"):
        context_config(3, "informative", 0, bad)
