"""Calibration of the report's decision (a small version of studies/simulate_calibration.py: seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lift.report import calibration as C
from lift.report import decision

ROOT = Path(__file__).resolve().parents[2]


def test_simulated_studies_have_groups_clips_and_seed_shifts():
    s = C.Setting(n_clusters=400, seed_factor=1.0)
    sims = C.simulate(np.random.default_rng(0), s, 40, effect=0.0)
    assert sims.treatment.shape == (40, 3, 3, 400) and sims.blend.shape == (40, 3, 1, 400)
    assert sims.clip_diff.shape == (40, 400 * 3)
    d = sims.treatment[:, 0].mean(axis=1) - sims.control[:, 0].mean(axis=1)  # d_c of the first endpoint
    # The SD of d_c around each study's mean is the per-cluster SD (the seed shift is shared by all clusters) ...
    assert np.std(d - d.mean(axis=1, keepdims=True), ddof=1) == pytest.approx(s.sd_cluster, rel=0.1)
    # ... and the study means vary by the seed shifts of both arms: sqrt(2 / 3) seed SD.
    assert np.std(d.mean(axis=1)) == pytest.approx(np.sqrt(2 / 3) * s.sd_seed, rel=0.35)
    # LPIPS is lower-is-better: the treatment's benefit lowers it.
    up = C.simulate(np.random.default_rng(1), C.Setting(n_clusters=50), 20, effect=3.0)
    assert (up.treatment[:, 0] > up.control[:, 0]).mean() > 0.9 and (up.treatment[:, 2] < up.control[:, 2]).mean() > 0.9


def test_decision_holds_alpha_where_the_old_decisions_do_not():
    n = 400
    for factor in (0.0, 2.0):
        cell = C.run_cell(n, C.Setting(n_clusters=30, seed_factor=factor, skew=-1), seed=7)
        limit = C.binomial_interval(n, 0.05)[1]
        assert cell.reject_h0.rate <= limit, cell.to_dict()
        assert abs(cell.coverage.rate - 0.95) <= 0.03, cell.to_dict()
        assert cell.old_clip_level.rate > limit  # clips of a group are not independent
        if factor > 0:
            assert cell.seed_ignoring.rate > 3 * limit  # a shared seed shift read as an effect
    strong = C.run_cell(200, C.Setting(n_clusters=30, effect=1.0), seed=8)
    assert strong.power.rate > 0.8


def test_the_calibration_calls_the_reports_decision(monkeypatch):
    calls = []
    real = decision.decide_primary

    def spy(*args, **kw):
        calls.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(C.decision, "decide_primary", spy)
    C.run_cell(20, C.Setting(n_clusters=8), seed=0)
    assert calls and all(k["procedure"] == "fixed_sequence" and k["blend"] is not None for k in calls)


def test_calibration_script_prints_the_table_and_writes_figures(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("simulate_calibration", ROOT / "studies" / "simulate_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "calibration.json"
    rc = module.main(["--sims", "100", "--clusters", "8,30", "--seed_factors", "0,2", "--skews", "1",
                      "--seed", "3", "--json", str(out)])
    text = capsys.readouterr().out
    assert "| clusters | seed SD / cluster SD | reject_h0 under H0 |" in text
    figures = json.loads(out.read_text())
    assert len(figures) == 4 and {f["setting"]["n_clusters"] for f in figures} == {8, 30}
    assert rc == (0 if all(f["holds_alpha"] and f["coverage_ok"] for f in figures) else 1)
