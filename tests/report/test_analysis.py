"""lift.report.analysis: the caveats, the primary comparison as the study config names it, and the ablation
table (which arms are compared: tests/report/test_plan.py; completeness and the tuning table:
tests/report/test_summaries.py).

The study folders are synthetic one_at_a_time ablations (conftest.build_ablation_study): a window-15 base arm,
its window-3 change, and one change each of loss.census and loss.lpips, with a known gain per arm.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from lift.report import analyse, combine_tables, load_study
from lift.report.__main__ import main
from lift.tune.study_config import StudyError, study_from_dict, validate_study_config

BASE = "window=15,offset=1,loss.census=0.1,loss.lpips=0.1"
W3 = "window=3,loss.census=0.1,loss.lpips=0.1"
NO_CENSUS = "window=15,offset=1,loss.census=0,loss.lpips=0.1"
NO_LPIPS = "window=15,offset=1,loss.census=0.1,loss.lpips=0"
# The base arm is 1 dB better than the window-3 arm and than the arm without the LPIPS loss; the census loss
# changes nothing.
GAINS = {"": 1.0, "data.window": 0.0, "loss.lpips": 0.0, "loss.census": 1.0}


@pytest.fixture()
def ablation_dir(tmp_path, synth) -> Path:
    return synth.build_ablation_study(tmp_path / "study", gains=GAINS)


def rows_by_factor(results: dict) -> dict[str, dict]:
    return {r["factor"]: r for r in results["ablation"]["rows"]}


def test_primary_is_the_base_against_its_window3_change(ablation_dir, options):
    a = analyse(load_study([ablation_dir]), options())
    primary = [c for c in a.results["comparisons"] if c["primary"]]
    assert [(c["treatment"], c["control"]) for c in primary] == [(BASE, W3)]
    assert a.results["verdict"] == "H0 rejected"
    # The ablation arms are not "offset arms": they are rows of the ablation table, not secondary vs window 3.
    assert not any(c["control"] == W3 and c["treatment"] != BASE for c in a.results["comparisons"])
    assert any("one_at_a_time base arm" in n for n in a.notes)


def test_ablation_table_has_one_row_per_change_and_flags_the_right_factor(ablation_dir, options):
    a = analyse(load_study([ablation_dir]), options())
    rows = rows_by_factor(a.results)
    assert list(rows) == ["data.window", "loss.census", "loss.lpips"]
    assert [(r["base_level"], r["changed_level"]) for r in rows.values()] == [(15, 3), (0.1, 0.0), (0.1, 0.0)]
    assert rows["data.window"]["family"] == "primary"
    assert rows["data.window"]["verdict"] == "primary comparison: H0 rejected"
    assert (rows["loss.lpips"]["treatment"], rows["loss.lpips"]["control"]) == (BASE, NO_LPIPS)
    assert all(d["significant"] for d in rows["loss.lpips"]["metrics"])
    assert rows["loss.lpips"]["verdict"] == "loss.lpips=0.1 better on PSNR, SSIM, LPIPS"
    assert not any(d["significant"] or d["worse"] for d in rows["loss.census"]["metrics"])
    assert rows["loss.census"]["verdict"] == "no significant difference"
    for r in rows.values():
        assert r["n_clusters"] == 12 and r["seeds_treatment"] == [0, 1, 2] and r["seeds_control"] == [0, 1, 2]
        for d in r["metrics"]:
            assert d["ci_low"] <= d["diff"] <= d["ci_high"]
            assert d["improvement"] == pytest.approx(d["direction"] * d["diff"])
    # the flat table has the same rows
    table = a.tables["ablation"]
    assert list(table["factor"]) == list(rows) and list(table["changed_level"]) == ["3", "0", "0"]
    assert table.loc[table["factor"] == "loss.lpips", "psnr_significant"].item()


def _independent_p(root: Path, treatment: str, control: str, metric: str, direction: int) -> tuple[float, float]:
    """The decision's two p-values recomputed from the per-sample files with pandas and scipy: the seed-aware
    t-test (SE^2 = s^2(d_c)/n + V_T + V_C, Welch-Satterthwaite df) and the Wilcoxon signed-rank test on d_c."""
    rows = pd.concat([pd.read_parquet(p) for p in sorted(root.rglob("samples.parquet"))])
    rows = rows[rows["split"] == "test"]

    def seed_by_cluster(arm: str) -> pd.DataFrame:  # seeds x clusters
        return rows[rows["arm"] == arm].groupby(["seed", "cluster_id"])[metric].mean().unstack()

    t, c = seed_by_cluster(treatment), seed_by_cluster(control)
    d = direction * (t.mean(axis=0) - c[t.columns].mean(axis=0)).to_numpy()
    n = len(d)

    def seed_var(y: pd.DataFrame) -> tuple[float, int]:
        k = len(y)
        # two-way ANOVA without replication: the interaction mean square is the residual one
        resid = y.sub(y.mean(axis=1), axis=0).sub(y.mean(axis=0), axis=1) + y.to_numpy().mean()
        ms_int = float((resid.to_numpy() ** 2).sum()) / ((k - 1) * (y.shape[1] - 1))
        return max(float(y.mean(axis=1).var(ddof=1)) - ms_int / y.shape[1], 0.0) / k, k

    (v_t, k_t), (v_c, k_c) = seed_var(t), seed_var(c)
    v_d = float(np.var(d, ddof=1)) / n
    var = v_d + v_t + v_c
    df = var ** 2 / (v_d ** 2 / (n - 1) + v_t ** 2 / (k_t - 1) + v_c ** 2 / (k_c - 1))
    p_t = float(stats.t.sf(d.mean() / np.sqrt(var), df))
    p_w = float(stats.wilcoxon(d, alternative="greater").pvalue)
    return p_t, p_w


def test_ablation_p_values_equal_an_independent_scipy_computation(ablation_dir, options):
    a = analyse(load_study([ablation_dir]), options())
    comps = {(c["treatment"], c["control"]): c for c in a.results["comparisons"]}
    for r in a.results["ablation"]["rows"]:
        comp = comps[(r["treatment"], r["control"])]
        for d, full in zip(r["metrics"], comp["metrics"]):
            p_t, p_w = _independent_p(ablation_dir, r["treatment"], r["control"], d["metric"], d["direction"])
            assert full["p_seeds"] == pytest.approx(p_t, rel=1e-9, abs=1e-12)
            assert full["p_wilcoxon"] == pytest.approx(p_w, rel=1e-12)
            assert d["p"] == pytest.approx(max(p_t, p_w), rel=1e-9)


def _holm(p: list[float]) -> np.ndarray:
    return multipletests(p, method="holm")[1]


def test_the_family_setting_changes_the_adjusted_p(ablation_dir, tmp_path, options):
    secondary = analyse(load_study([ablation_dir]), options())
    assert secondary.results["ablation"]["family"] == "secondary"
    # secondary: Holm over every (comparison, endpoint) of the secondary family, the baselines included
    flat = [d for c in secondary.results["comparisons"] if c["family"] == "secondary" for d in c["metrics"]]
    assert len(flat) == 4 * 3
    expected = dict(zip([id(d) for d in flat], _holm([d["p_decision"] for d in flat])))
    assert [d["p_holm"] for d in flat] == pytest.approx([expected[id(d)] for d in flat])

    own = analyse(load_study([ablation_dir]), options(ablation_family="own"))
    assert own.results["ablation"]["family"] == "own"
    rows = [r for r in own.results["ablation"]["rows"] if r["family"] != "primary"]
    assert {r["family"] for r in rows} == {"ablation"}
    p = [d["p"] for r in rows for d in r["metrics"]]
    assert [d["p_adjusted"] for r in rows for d in r["metrics"]] == pytest.approx(list(_holm(p)))
    # fewer tests in the family: the adjusted p of the effect is smaller than in the secondary family
    lp_own = rows_by_factor(own.results)["loss.lpips"]["metrics"][0]["p_adjusted"]
    lp_sec = rows_by_factor(secondary.results)["loss.lpips"]["metrics"][0]["p_adjusted"]
    assert lp_own < lp_sec
    # the baselines stay in the secondary family, without the ablation rows
    assert len([c for c in own.results["comparisons"] if c["family"] == "secondary"]) == 2


def test_secondary_rows_are_gatekept_but_their_own_family_is_not(tmp_path, synth, options):
    no_context = {**GAINS, "data.window": 1.0}  # window 3 as good as window 15: H0 not rejected
    root = synth.build_ablation_study(tmp_path / "s", gains=no_context)
    a = analyse(load_study([root]), options())
    assert a.results["verdict"] == "H0 not rejected"
    rows = rows_by_factor(a.results)
    assert rows["loss.lpips"]["verdict"] == "not tested (the primary family did not reject H0)"
    assert not any(d["tested"] for d in rows["loss.lpips"]["metrics"])
    root_own = synth.build_ablation_study(tmp_path / "own", gains=no_context, report={"ablation_family": "own"})
    own = analyse(load_study([root_own]), options()).results
    rows = rows_by_factor(own)
    assert f"ablation family (Holm): significant for {BASE} vs {NO_LPIPS}." in own["decision"]
    assert rows["loss.lpips"]["family"] == "ablation"
    assert rows["loss.lpips"]["verdict"] == "loss.lpips=0.1 better on PSNR, SSIM, LPIPS"


def test_primary_selectors_come_from_the_study_config_and_the_cli_overrides_them(tmp_path, synth, options):
    root = synth.build_ablation_study(tmp_path / "s", gains=GAINS, report={"treatment": BASE, "control": "loss.lpips=0"})
    a = analyse(load_study([root]), options())
    assert [(c["treatment"], c["control"]) for c in a.results["comparisons"] if c["primary"]] == [(BASE, NO_LPIPS)]
    assert rows_by_factor(a.results)["loss.lpips"]["family"] == "primary"
    assert any("report.control" in n for n in a.notes)
    b = analyse(load_study([root]), options(controls=["window=3"]))
    assert [(c["treatment"], c["control"]) for c in b.results["comparisons"] if c["primary"]] == [(BASE, W3)]


def test_cli_writes_the_ablation_table_csv_json_plot_and_markdown(ablation_dir, tmp_path):
    out = tmp_path / "r"
    assert main([str(ablation_dir), "--out", str(out), "--n_permutations", "200", "--ablation-family", "own"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["factor"] for r in results["ablation"]["rows"]] == ["data.window", "loss.census", "loss.lpips"]
    csv = pd.read_csv(out / "tables" / "ablation.csv")
    assert list(csv["factor"]) == ["data.window", "loss.census", "loss.lpips"]
    assert json.loads((out / "tables" / "ablation.json").read_text())[2]["verdict"].startswith("loss.lpips=0.1 better")
    assert (out / "plots" / "ablation_forest.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "## Ablation table" in md and "| loss.lpips: 0.1 → 0 |" in md and "plots/ablation_forest.png" in md


def test_study_config_report_section_validates_selectors_and_family():
    cfg = study_from_dict({"report": {"treatment": "window=15", "control": "window=3", "ablation_family": "own"}})
    assert validate_study_config(cfg).report.ablation_family == "own"
    with pytest.raises(StudyError, match=r"report.ablation_family: got 'both'"):
        validate_study_config(study_from_dict({"report": {"ablation_family": "both"}}))
    with pytest.raises(StudyError, match=r"report.control: arm 'window3' is malformed"):
        validate_study_config(study_from_dict({"report": {"control": "window3"}}))


# ---------------------------------------------------------------------------------------------
# Caveats and library use (on the synthetic window study of conftest)
# ---------------------------------------------------------------------------------------------

def test_caveats_few_videos_sample_level_only_and_one_sample_per_video(synth, tmp_path, options):
    # Four sources, many frames each, all improving: the cluster-level test cannot reach alpha (floor 1/16),
    # while the sample-level test (which treats 120 frames as independent) looks overwhelming.
    samples = synth.sample_ids([f"v{i}" for i in range(4)], range(30))
    t = synth.make_rows("window=15,offset=1", samples, gain_db=1.0, video_gain_sd=0.1)
    c = synth.make_rows("window=3", samples)
    a = analyse(combine_tables([t, c]), options())
    text = " ".join(a.caveats)
    assert "with 4 independent source(s) the smallest achievable p is 0.0625 >= alpha=0.05" in text
    assert a.results["verdict"] == "cannot reject by design"
    assert "window=15,offset=1 vs window=3: significant only at the sample level" in text
    assert "PSNR (sample-level p = " in text
    assert a.results["reject_h0"] is False
    psnr = a.results["comparisons"][0]["metrics"][0]
    assert psnr["p_wilcoxon"] == pytest.approx(1 / 16) and psnr["p_wilcoxon_samples"] < 1e-6
    # One frame per video: the two levels coincide, and the report says so.
    one = synth.sample_ids([f"v{i}" for i in range(12)], [3])
    a = analyse(combine_tables([synth.make_rows("window=15,offset=1", one, gain_db=1.0), synth.make_rows("window=3", one)]),
                options())
    assert any("every source contributes one sample" in x for x in a.caveats)


def test_caveats_seeds_disagree_and_worse_metric(synth, tmp_path, options):
    samples = synth.sample_ids([f"v{i}" for i in range(12)], [1, 2, 3])
    c = pd.concat([synth.make_rows("window=3", samples, seed=s, rng_seed=0) for s in (0, 1)])
    t = pd.concat([synth.make_rows("window=15,offset=1", samples, seed=0, gain_db=1.5, rng_seed=1),
                   synth.make_rows("window=15,offset=1", samples, seed=1, gain_db=-1.0, rng_seed=1)])
    a = analyse(combine_tables([t, c]), options())
    assert any("PSNR: seeds disagree on the direction of the effect (seed 0: +" in x for x in a.caveats)
    worse = synth.make_rows("window=15,offset=1", samples, gain_db=-2.0, rng_seed=1)
    a = analyse(combine_tables([worse, synth.make_rows("window=3", samples)]), options())
    psnr = a.results["comparisons"][0]["metrics"][0]
    assert psnr["worse"] is True and psnr["significant"] is False
    assert "significantly worse on PSNR" in a.results["decision"]
    assert any("PSNR is significantly WORSE" in x for x in a.caveats)


def test_library_use_on_dataframes_without_files(synth, options):
    samples = synth.sample_ids([f"v{i}" for i in range(10)], [1, 2])
    study = combine_tables([synth.make_rows(arm, samples, gain_db=gain, seed=s)
                            for arm, gain in (("window=15,offset=1", 1.0), ("window=3", 0.0)) for s in (0, 1, 2)])
    a = analyse(study, options())
    assert a.results["reject_h0"] is True and a.results["verdict"] == "H0 rejected"
    assert a.results["decision"].startswith("H0 rejected at alpha=0.05: window=15,offset=1 improves over window=3")


