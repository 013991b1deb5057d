"""End to end: `python -m lift.report` on a synthetic study folder written in the contract's layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from lift.report.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"metric", "mean_treatment", "mean_control", "mean_diff", "ci_low", "ci_high", "p_wilcoxon", "p_ttest",
               "p_permutation", "p_wilcoxon_samples", "p_holm", "effect_dz", "rank_biserial", "significant", "worse"}


def test_cli_end_to_end_report(study_dir, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main([str(study_dir), "--out", str(out), "--n_permutations", "500"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert printed == [results["decision"], f"report: {out / 'report.md'}"]

    # results.json: the contract of ARCHITECTURE.md
    assert {"verdict", "decision", "reject_h0", "alpha", "comparisons"} <= set(results)
    assert results["verdict"] == "H0 rejected" and results["alpha"] == 0.05 and results["reject_h0"] is True
    assert results["decision"].startswith("H0 rejected at alpha=0.05: window=15,offset=2 improves over window=3")
    families = [(c["treatment"], c["control"], c["family"]) for c in results["comparisons"]]
    assert families == [
        ("window=15,offset=2", "window=3", "primary"),
        ("window=15,offset=2", "baseline=blend", "secondary"), ("window=15,offset=2", "baseline=repeat", "secondary"),
        ("window=7,offset=1", "window=3", "secondary"), ("window=15,offset=1", "window=3", "secondary"),
        ("window=3", "baseline=blend", "sanity"),
    ]
    for comp in results["comparisons"]:
        assert {"treatment", "control", "family", "n", "n_videos", "n_clusters", "seeds_treatment", "seeds_control",
                "metrics"} <= set(comp)
        assert comp["n"] == 48 and comp["n_videos"] == 16 and comp["n_clusters"] == 8
        assert [m["metric"] for m in comp["metrics"]] == ["psnr", "ssim", "lpips"]
        for m in comp["metrics"]:
            assert METRIC_KEYS <= set(m)
            assert isinstance(m["significant"], bool) and isinstance(m["worse"], bool)
    assert results["comparisons"][0]["seeds_treatment"] == [0, 1, 2]

    # The primary p-values, recomputed independently from the raw tables with pandas + scipy on the d_c.
    rows = pd.concat([pd.read_parquet(p) for p in study_dir.rglob("samples.parquet")])
    test = rows[rows["split"] == "test"]
    per_arm = test.groupby(["arm", "sample_id", "cluster_id"])[["psnr", "lpips"]].mean().reset_index()
    t = per_arm[per_arm["arm"] == "window=15,offset=2"].set_index("sample_id")
    c = per_arm[per_arm["arm"] == "window=3"].set_index("sample_id")
    primary = results["comparisons"][0]
    for metric, sign in (("psnr", 1), ("lpips", -1)):
        d_c = ((t[metric] - c[metric]) * sign).groupby(t["cluster_id"]).mean().to_numpy()
        got = next(m for m in primary["metrics"] if m["metric"] == metric)
        assert got["p_wilcoxon"] == pytest.approx(sps.wilcoxon(d_c, alternative="greater").pvalue, rel=1e-9)
        assert got["p_ttest"] == pytest.approx(sps.ttest_1samp(d_c, 0, alternative="greater").pvalue, rel=1e-9)
        assert got["mean_diff"] * sign == pytest.approx(float(d_c.mean()), rel=1e-9)
        assert got["p_decision"] == max(got["p_seeds"], got["p_wilcoxon"]) and got["p_holm"] >= got["p_decision"]

    # report.md: the verdict first, then setup, the families, plots, tuning, caveats
    md = (out / "report.md").read_text()
    assert md.splitlines()[2] == "## Verdict: H0 rejected"
    assert md.splitlines()[4] == f"**Decision.** {results['decision']}"
    for heading in ("## Setup", "## Primary family (decides H0)", "### window=15,offset=2 vs window=3: H0 rejected",
                    "## Secondary family (gatekept, Holm)", "### window=3 vs baseline=blend: passed", "## Tuning",
                    "## Flow quality", "## Caveats", "## Method"):
        assert heading in md
    assert "1 of 3 tuning trial(s) failed" in md

    # PNG plots referenced by the report exist and are PNG files; every table has CSV and JSON.
    plots = results["plots"]
    assert {"forest", "metric_vs_window"} <= set(plots)
    assert any(k.startswith("differences__") for k in plots) and any(k.startswith("per_cluster__") for k in plots)
    for rel in plots.values():
        assert f"]({rel})" in md
        assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("comparisons", "arms", "seeds", "seed_spread", "tuning", "validation", "flow",
                 "per_cluster__window15_offset2_vs_window3"):
        assert (out / "tables" / f"{name}.csv").is_file()
        assert isinstance(json.loads((out / "tables" / f"{name}.json").read_text()), list)
    table = pd.read_csv(out / "tables" / "comparisons.csv")
    assert len(table) == 18 and set(table["metric"]) == {"psnr", "ssim", "lpips"}
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_fewer_than_three_seeds_is_inconclusive(tmp_path, synth):
    root = synth.build_study(tmp_path / "s", seeds=(0, 1))
    out = tmp_path / "r"
    assert main([str(root), "--out", str(out), "--no_plots", "--n_permutations", "200"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"] == "inconclusive" and results["reject_h0"] is False
    assert "too few seeds" in results["decision"]


def test_too_few_sources_cannot_reject_by_design(tmp_path, synth):
    root = synth.build_study(tmp_path / "s", n_videos=6)  # 3 sources: smallest p 1/8
    out = tmp_path / "r"
    assert main([str(root), "--out", str(out), "--no_plots", "--n_permutations", "200"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"] == "cannot reject by design" and results["design"]["clusters_needed"] == 5
    assert "with 3 independent source(s) the smallest achievable p is 0.125" in results["decision"]
    # One source (the embedded default's test split): still a report, with the same verdict.
    root = synth.build_study(tmp_path / "one", n_videos=2)
    assert main([str(root), "--out", str(tmp_path / "r1"), "--n_permutations", "200"]) == 0
    results = json.loads((tmp_path / "r1" / "results.json").read_text())
    assert results["verdict"] == "cannot reject by design" and results["comparisons"][0]["n_clusters"] == 1


def test_family_from_the_study_summary(tmp_path, synth):
    root = synth.build_study(tmp_path / "s", arms_gain={"window=3": 0.0, "window=15,offset=1": 1.0})
    summary = json.loads((root / "study_summary.json").read_text())
    summary["family"] = {"endpoints": ["lpips", "psnr"], "procedure": "holm", "alpha": 0.1, "sesoi": {"psnr": 5.0}}
    (root / "study_summary.json").write_text(json.dumps(summary))
    out = tmp_path / "r"
    assert main([str(root), "--out", str(out), "--no_plots", "--n_permutations", "200"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["family"]["procedure"] == "holm" and results["alpha"] == 0.1
    primary = results["comparisons"][0]
    assert [m["metric"] for m in primary["metrics"]] == ["lpips", "psnr"]
    psnr = primary["metrics"][1]
    assert psnr["sesoi"] == 5.0 and psnr["sesoi_status"] != "at least the smallest effect of interest"


def test_cli_no_effect_is_not_rejected_and_tables_as_inputs(tmp_path, synth, capsys):
    root = synth.build_study(tmp_path / "s", arms_gain={"window=3": 0.0, "window=15,offset=1": 0.0},
                             baselines=False, val=False, summary=False)
    files = sorted(str(p) for p in root.rglob("samples.parquet"))
    out = tmp_path / "r"
    rc = main([*files, "--out", str(out), "--no_plots", "--treatment", "window=15", "--control", "window=3",
               "--n_permutations", "300", "--alpha", "0.01"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert results["reject_h0"] is False and results["alpha"] == 0.01 and results["verdict"] == "H0 not rejected"
    assert results["decision"].startswith("H0 not rejected at alpha=0.01: window=15,offset=1 shows no significant "
                                          "improvement over window=3")
    assert "family" in " ".join(results["notes"])  # the default family (no study summary)
    assert not (out / "plots").exists()
    assert capsys.readouterr().out.startswith("H0 not rejected")


def test_cli_default_output_folder(tmp_path, study_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(study_dir), "--no_plots", "--n_permutations", "200"]) == 0
    assert (tmp_path / "reports" / "study" / "report.md").is_file()


def _run_module(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_refusal_is_one_line_without_traceback(tmp_path, study_dir):
    proc = _run_module(["-m", "lift.report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"lift.report: error: {tmp_path / 'missing'}: no such file or folder"
    path = study_dir / "confirm" / "window3" / "seed0" / "samples.parquet"
    pd.read_parquet(path).drop(columns=["ssim"]).to_parquet(path)
    proc = _run_module(["-m", "lift.report", str(study_dir), "--out", str(tmp_path / "r")], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"{path}: missing column(s) ssim" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_report_works_without_ray(tmp_path, study_dir):
    code = ("import sys; from lift.report.__main__ import main; "
            f"rc = main([{str(study_dir)!r}, '--out', {str(tmp_path / 'r')!r}, '--no_plots', "
            "'--n_permutations', '200']); "
            "assert 'ray' not in sys.modules and 'torch' not in sys.modules, 'report must not import ray/torch'; "
            "sys.exit(rc)")
    proc = _run_module(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "results.json").is_file()


def test_inf_psnr_end_to_end(tmp_path, synth):
    samples = synth.sample_ids([f"v{i}" for i in range(6)], [1, 2, 3])
    t = synth.make_rows("window=15,offset=1", samples, gain_db=0.5)
    c = synth.make_rows("baseline=repeat", samples, flow=False)
    c.loc[c["video_id"] == "v0", "psnr"] = np.inf  # a static video: the repeated frame is exact
    synth.write(pd.concat([t, c]), tmp_path / "t")
    out = tmp_path / "r"
    assert main([str(tmp_path / "t"), "--out", str(out), "--no_plots", "--n_permutations",
                 "200", "--psnr_cap", "80"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["psnr_cap_db"] == 80 and results["n_psnr_capped"] == {"baseline=repeat": 3}
    psnr = results["comparisons"][0]["metrics"][0]
    assert psnr["mean_control"] is not None and psnr["mean_control"] < 80
    assert "3 sample(s) had PSNR above the ceiling" in (out / "report.md").read_text()


def test_control_losing_to_blend_is_inconclusive(tmp_path, synth):
    root = synth.build_study(tmp_path / "s", arms_gain={"window=3": 0.0, "window=15,offset=1": 1.0}, baselines=False)
    samples = synth.sample_ids([f"clip{i:02d}" for i in range(16)], (4, 9, 14))
    synth.write(synth.make_rows("baseline=blend", samples, gain_db=3.0, rng_seed=51, flow=False), root / "baselines")
    out = tmp_path / "r"
    assert main([str(root), "--out", str(out), "--no_plots", "--n_permutations", "200"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"] == "inconclusive" and results["reject_h0"] is False
    assert "the control does not beat blending" in results["decision"]
    sanity = next(c for c in results["comparisons"] if c["family"] == "sanity")
    assert sanity["sanity_ok"] is False and results["comparisons"][0]["sanity_ok"] is False


def test_window_3_below_the_published_model_fails_the_fine_tuning_check(tmp_path, synth):
    """baseline=rife_hd adds a fine-tuning check (window 3 vs the published model): shown, not used
    in the verdict, failed with a caveat when window 3 falls more than 0.1 dB below it."""
    samples = synth.sample_ids([f"clip{i:02d}" for i in range(16)], (4, 9, 14))
    for gain, ok in ((-1.0, True), (1.0, False)):
        root = synth.build_study(tmp_path / f"s{gain}", arms_gain={"window=3": 0.0, "window=15,offset=1": 1.0})
        synth.write(synth.make_rows("baseline=rife_hd", samples, gain_db=gain, rng_seed=52, flow=False),
                    root / "baselines" / "hd")
        out = tmp_path / f"r{gain}"
        assert main([str(root), "--out", str(out), "--no_plots", "--n_permutations", "200"]) == 0
        results = json.loads((out / "results.json").read_text())
        check = next(c for c in results["comparisons"] if c["family"] == "published")
        assert (check["treatment"], check["control"]) == ("window=3", "baseline=rife_hd")
        assert check["published_ok"] is ok
        report = (out / "report.md").read_text()
        assert "Fine-tuning check (window 3 must not fall below the published RIFE)" in report
        assert ("fine-tuning check failed" in report) is (not ok)
        assert results["verdict"] == "H0 rejected"
