"""The frames panel: ground truth, control, treatment and their error maps, side by side, for the samples
where the two arms differ most and least.

The confirm stage keeps the predicted frames of a fixed subset of test samples (the same ids for every
arm: :func:`lift.evaluate.panel_sample_ids`) in ``frames/`` beside each run's ``samples.parquet``, with
an ``index.json`` (sample id -> PNG files). Nothing is re-run here: the report only reads those files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pandas as pd

from lift.report.plots import plt, save_figure
from lift.report.tables import Study

FRAMES_DIR = "frames"
FRAMES_INDEX = "index.json"  # the name lift.evaluate writes (not imported: the report does not load torch)


@dataclass
class PanelRow:
    sample_id: str
    diff: float  # treatment - control of the first endpoint (seed-averaged)
    kind: str  # "most" or "least"
    target: Path
    control: Path
    treatment: Path


def frame_index(study: Study, arm: str) -> dict[str, dict[str, Path]]:
    """Sample id -> {"pred", "target"} PNG paths of ``arm``'s lowest seed that kept frames."""
    test = study.test
    for seed in sorted(test.loc[test["arm"] == arm, "seed"].unique()):
        for source in sorted(test.loc[(test["arm"] == arm) & (test["seed"] == seed), "source"].unique()):
            folder = Path(source).parent / FRAMES_DIR
            try:
                index = json.loads((folder / FRAMES_INDEX).read_text())
            except (OSError, ValueError):
                continue
            out = {sid: {k: folder / name for k, name in files.items()} for sid, files in index.items()
                   if isinstance(files, dict)}
            if out:
                return out
    return {}


def choose_rows(study: Study, comparison: dict[str, Any], per_side: int = 2) -> list[PanelRow]:
    """The ``per_side`` samples (among those with frames for both arms) with the largest and the smallest
    absolute difference of the first endpoint."""
    t_idx, c_idx = frame_index(study, comparison["treatment"]), frame_index(study, comparison["control"])
    common = sorted(set(t_idx) & set(c_idx))
    if not common:
        return []
    metric = comparison["metrics"][0]["metric"]
    test = study.test
    means = (test[test["arm"].isin([comparison["treatment"], comparison["control"]]) & test["sample_id"].isin(common)]
             .groupby(["sample_id", "arm"])[metric].mean().unstack("arm"))
    diff = (means[comparison["treatment"]] - means[comparison["control"]]).dropna()
    order = diff.abs().sort_values(kind="stable")
    most = list(order.index[::-1][:per_side])
    least = [s for s in order.index[:per_side] if s not in most]
    return [PanelRow(sid, float(diff[sid]), kind, t_idx[sid]["target"], c_idx[sid]["pred"], t_idx[sid]["pred"])
            for kind, ids in (("most", most), ("least", least)) for sid in ids]


def _read(path: Path) -> np.ndarray:
    img = matplotlib.image.imread(str(path))
    return img[..., :3].astype(float) if img.dtype != np.uint8 else img[..., :3] / 255.0


def plot_frames_panel(rows: list[PanelRow], comparison: dict[str, Any], path: Path) -> Path:
    """One row per sample: ground truth, control, treatment, |error| of each (shared scale per row)."""
    metric = comparison["metrics"][0]["metric"]
    cols = ["ground truth", comparison["control"], comparison["treatment"], f"|error| {comparison['control']}",
            f"|error| {comparison['treatment']}"]
    fig, axes = plt.subplots(len(rows), 5, figsize=(15, 2.9 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        gt, ctrl, trt = _read(row.target), _read(row.control), _read(row.treatment)
        err_c, err_t = np.abs(ctrl - gt).mean(axis=-1), np.abs(trt - gt).mean(axis=-1)
        vmax = max(float(err_c.max()), float(err_t.max()), 1e-6)
        for c, (img, cmap) in enumerate(((gt, None), (ctrl, None), (trt, None), (err_c, "magma"), (err_t, "magma"))):
            ax = axes[r, c]
            ax.imshow(img, cmap=cmap, vmin=0, vmax=vmax if cmap else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
        axes[r, 0].set_ylabel(f"{row.sample_id}\n{row.kind} differing\nΔ{metric} = {row.diff:+.3g}", fontsize=7)
    fig.suptitle(f"Frames: {comparison['treatment']} vs {comparison['control']} (samples where they differ most "
                 f"and least on {metric}; error maps share a scale per row)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=72)  # photographs compress poorly: keep the committed PNG small


def write_frames_panel(study: Study, comparison: dict[str, Any], path: Path) -> tuple[Path | None, pd.DataFrame]:
    """The panel PNG (None when no run kept frames for both arms) and the table of its samples."""
    rows = choose_rows(study, comparison)
    table = pd.DataFrame([{"sample_id": r.sample_id, "kind": r.kind, "diff": r.diff} for r in rows],
                         columns=["sample_id", "kind", "diff"])
    if not rows:
        return None, table
    return plot_frames_panel(rows, comparison, path), table
