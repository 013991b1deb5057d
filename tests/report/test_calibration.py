"""Calibration of the video-level decision by simulation with within-video correlation (modest size)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lift.report import stats
from lift.report.calibration import Setting, binomial_interval, run_calibration, simulate_study

ROOT = Path(__file__).resolve().parents[2]


def test_simulated_studies_are_correlated_within_videos():
    s = Setting(n_videos=200, samples_per_video=10, sd_video=1.0, sd_sample=1.0)
    diff, vids = simulate_study(np.random.default_rng(0), s, effect=0.5)
    _, means, counts = stats.video_means(diff, vids)
    assert (counts == 10).all() and diff.mean() == pytest.approx(0.5, abs=0.2)
    # Var of a video mean = sd_video^2 + sd_sample^2 / m = 1.1, far above the 0.1 of independent frames.
    assert means.var(ddof=1) == pytest.approx(s.sd_video_mean ** 2, rel=0.25)


def test_calibration_type1_power_and_coverage():
    n = 300
    r = run_calibration(n, Setting(n_boot=1000), seed=2024)
    # H0 true: the video-level decision rejects about alpha of the time ...
    assert r.type1_video.within, r.type1_video.describe()
    assert r.type1_video_ttest.within, r.type1_video_ttest.describe()
    # ... while the sample-level test, which ignores the correlation, over-rejects far beyond the interval.
    assert r.type1_samples.count > binomial_interval(n, 0.05)[1], r.type1_samples.describe()
    assert r.type1_samples.rate > 3 * 0.05
    # Known effect: power matches the exact noncentral-t theory, and the ARE approximation for Wilcoxon.
    assert r.power_ttest.within, r.power_ttest.describe()
    assert r.power_video.within, r.power_video.describe()
    assert 0.5 < r.power_video.expected < 0.8  # the setting sits where power is informative
    # The cluster bootstrap covers the true mean difference about 95% of the time.
    assert r.coverage.within, r.coverage.describe()


def test_calibration_script_runs_and_writes_figures(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("simulate_calibration", ROOT / "studies" / "simulate_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "calibration.json"
    rc = module.main(["--sims", "100", "--n_boot", "300", "--seed", "3", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "type-I error, video-level Wilcoxon" in text and "over-rejects" in text
    figures = json.loads(out.read_text())
    assert figures["n_sims"] == 100 and figures["type1_video"]["within"] is True
    assert set(figures) >= {"type1_video", "type1_samples", "power_ttest", "power_video", "coverage"}
