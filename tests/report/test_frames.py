"""The frames panel: chosen samples (most and least differing), composed PNG, linked in report.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lift.report import make_report
from lift.report import ReportOptions


def _keep_frames(run_dir: Path, sample_ids: list[str], shade: float) -> None:
    folder = run_dir / "frames"
    folder.mkdir()
    index = {}
    for k, sid in enumerate(sample_ids):
        target = np.full((24, 32, 3), 100 + k, dtype=np.uint8)
        pred = np.clip(target.astype(float) + shade * (k + 1), 0, 255).astype(np.uint8)
        Image.fromarray(target).save(folder / f"{k}_target.png")
        Image.fromarray(pred).save(folder / f"{k}_pred.png")
        index[sid] = {"pred": f"{k}_pred.png", "target": f"{k}_target.png"}
    (folder / "index.json").write_text(json.dumps(index))


def test_frames_panel_shows_the_most_and_least_differing_samples(study_dir, tmp_path):
    t_dir, c_dir = study_dir / "confirm" / "window15_offset2" / "seed0", study_dir / "confirm" / "window3" / "seed0"
    ids = sorted(pd.read_parquet(t_dir / "samples.parquet")["sample_id"])[:10]
    _keep_frames(t_dir, ids, 2.0)
    _keep_frames(c_dir, ids, 6.0)
    out = tmp_path / "r"
    analysis, written = make_report([study_dir], out, options=ReportOptions(n_permutations=200))
    rel = analysis.results["plots"]["frames"]
    assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![frames panel]({rel})" in written["report"].read_text()
    chosen = pd.read_csv(out / "tables" / "frames_panel.csv")
    # Independently: seed-averaged PSNR difference of the samples with frames, by absolute size.
    rows = pd.concat([pd.read_parquet(p) for p in study_dir.rglob("samples.parquet")])
    test = rows[(rows["split"] == "test") & rows["sample_id"].isin(ids)]
    means = test.groupby(["sample_id", "arm"])["psnr"].mean().unstack("arm")
    diff = (means["window=15,offset=2"] - means["window=3"]).abs().sort_values()
    assert chosen.loc[chosen["kind"] == "most", "sample_id"].tolist() == list(diff.index[::-1][:2])
    assert chosen.loc[chosen["kind"] == "least", "sample_id"].tolist() == list(diff.index[:2])


def test_no_frames_is_said_not_failed(study_dir, tmp_path):
    analysis, written = make_report([study_dir], tmp_path / "r", options=ReportOptions(n_permutations=200))
    assert "frames" not in analysis.results["plots"]
    assert "No frames panel" in written["report"].read_text()
