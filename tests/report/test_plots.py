"""lift.report.plots: the report's figures are real PNG images, sized by what they show, written atomically.

The comparisons come from an analysis of the synthetic window study of conftest (build_study).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lift.report import analyse, load_study
from lift.report.plots import plot_differences, plot_forest, plot_metric_vs_window, plot_per_cluster


@pytest.fixture()
def analysis(study_dir, options):
    return analyse(load_study([study_dir]), options())


def _image(path) -> Image.Image:
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        return im


def test_forest_plot_is_a_png_whose_size_follows_the_metrics_and_comparisons(analysis, tmp_path):
    comps = [c for c in analysis.results["comparisons"] if c["family"] != "sanity"]
    n_metrics = len(comps[0]["metrics"])
    out = tmp_path / "plots"
    out.mkdir()
    one = _image(plot_forest(comps[:1], out / "one.png"))
    all_ = _image(plot_forest(comps, out / "all.png"))
    # figsize (3.4 * metrics + 2.5) x (1.2 + 0.45 * comparisons) inches at 110 dpi, trimmed to the drawing.
    assert 0.6 * (3.4 * n_metrics + 2.5) * 110 < all_.width < 1.2 * (3.4 * n_metrics + 2.5) * 110
    assert all_.height > one.height + 0.3 * 0.45 * (len(comps) - 1) * 110
    pixels = np.asarray(all_.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn, not a blank canvas
    assert sorted(p.name for p in out.iterdir()) == ["all.png", "one.png"]  # no temporaries left


def test_difference_and_per_cluster_plots_have_one_panel_per_metric(analysis, tmp_path):
    comp = analysis.results["comparisons"][0]
    per_cluster = analysis.per_cluster[f"{comp['treatment']} vs {comp['control']}"]
    diff = _image(plot_differences(per_cluster, comp, tmp_path / "d.png"))
    bars = _image(plot_per_cluster(per_cluster, comp, tmp_path / "c.png"))
    n = len(comp["metrics"])
    # Differences stack the metrics vertically (1.3 in each), per-cluster bars side by side (3.2 in each).
    assert diff.height > 0.6 * 1.3 * n * 110 and bars.width > 0.6 * 3.2 * n * 110


def test_metric_vs_window_needs_model_arms(analysis, tmp_path):
    arms = analysis.tables["arms"]
    path = plot_metric_vs_window(arms, analysis.results["metrics"], tmp_path / "w.png")
    assert path == tmp_path / "w.png" and _image(path).width > 0
    assert plot_metric_vs_window(arms[arms["baseline"]], analysis.results["metrics"], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
