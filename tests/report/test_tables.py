"""Reading, validating and pairing per-sample tables; every refusal path; arm selection rules; caveats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lift.report import ReportOptions, analyse, combine_tables, load_study
from lift.report.tables import ReportError, arm_matches, parse_arm, read_table

FAST = dict(n_permutations=200)


def options(**kw) -> ReportOptions:
    return ReportOptions(**{**FAST, **kw})


def first_table(study: Path, arm_folder: str = "window3", seed: int = 0) -> Path:
    return study / "confirm" / arm_folder / f"seed{seed}" / "samples.parquet"


# ---------------------------------------------------------------------------------------------
# Arms and selectors
# ---------------------------------------------------------------------------------------------

def test_arm_parsing_and_selectors():
    assert parse_arm("window=15,offset=2") == {"window": "15", "offset": "2"}
    assert arm_matches("window=15", "window=15,offset=2")
    assert arm_matches("offset=2", "window=15,offset=2")
    assert not arm_matches("window=1", "window=15,offset=2")  # values match exactly, not by prefix
    assert arm_matches("baseline=repeat", "baseline=repeat")
    with pytest.raises(ReportError, match="malformed"):
        parse_arm("window15")


# ---------------------------------------------------------------------------------------------
# Refusals: each names the file or arms and the problem
# ---------------------------------------------------------------------------------------------

def test_refuses_missing_path_and_folder_without_tables(tmp_path):
    with pytest.raises(ReportError, match="no such file or folder"):
        load_study([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"empty: no per-sample table"):
        load_study([tmp_path / "empty"])
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(ReportError, match=r"notes.txt: not a per-sample table"):
        load_study([other])


def test_refuses_empty_table(synth, tmp_path):
    path = synth.write(synth.make_rows("window=3", synth.sample_ids(["a"], [1])).iloc[:0], tmp_path / "run")
    with pytest.raises(ReportError, match=rf"{path}: the table is empty"):
        load_study([path])


def test_refuses_unreadable_file(tmp_path):
    path = tmp_path / "run" / "samples.parquet"
    path.parent.mkdir()
    path.write_bytes(b"this is not parquet")
    with pytest.raises(ReportError, match=rf"{path}: cannot read the per-sample table"):
        load_study([tmp_path])


def test_refuses_missing_metric_column_unless_left_out(study_dir):
    path = first_table(study_dir)
    pd.read_parquet(path).drop(columns=["lpips"]).to_parquet(path)
    with pytest.raises(ReportError, match=rf"{path}: missing column\(s\) lpips"):
        load_study([study_dir])
    study = load_study([study_dir], metrics=["psnr", "ssim"])
    assert study.metrics == ["psnr", "ssim"]


def test_refuses_missing_id_column(study_dir):
    path = first_table(study_dir)
    pd.read_parquet(path).drop(columns=["video_id"]).to_parquet(path)
    with pytest.raises(ReportError, match=rf"{path}: missing column\(s\) video_id"):
        load_study([study_dir])


def test_refuses_duplicate_rows_within_and_across_files(study_dir):
    path = first_table(study_dir)
    df = pd.read_parquet(path)
    pd.concat([df, df.iloc[:2]]).to_parquet(path)
    with pytest.raises(ReportError, match=r"duplicate test rows.*arm='window=3'.*seed=0"):
        load_study([study_dir])
    df.to_parquet(path)
    copy = study_dir / "confirm" / "window3" / "again" / "samples.parquet"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    with pytest.raises(ReportError, match="duplicate test rows") as err:
        load_study([study_dir])
    assert str(path) in str(err.value) and str(copy) in str(err.value)


def test_refuses_no_test_rows(synth, tmp_path):
    root = synth.build_study(tmp_path / "s", baselines=False)
    shutil.rmtree(root / "confirm")
    with pytest.raises(ReportError, match=r"no test rows \(split='test'\).*only split\(s\) val"):
        load_study([root])


def test_refuses_arms_on_different_sample_sets(study_dir):
    for seed in (0, 1, 2):
        path = first_table(study_dir, seed=seed)
        df = pd.read_parquet(path)
        df[df["video_id"] != "clip03"].to_parquet(path)
    study = load_study([study_dir])
    with pytest.raises(ReportError, match=r"arms 'window=15,offset=2' \(48 samples\) and 'window=3' \(45 samples\) "
                                          r"were evaluated on different sample sets: 3 only in window=15,offset=2"):
        analyse(study, options(treatments=["window=15,offset=2"]))


def test_refuses_seeds_on_different_sample_sets(study_dir):
    path = first_table(study_dir, seed=1)
    df = pd.read_parquet(path)
    df.iloc[:-3].to_parquet(path)
    with pytest.raises(ReportError, match=r"arm 'window=3': its seeds were evaluated on different sample sets "
                                          r"\(seed 0: 48, seed 1: 45, seed 2: 48 samples\)"):
        analyse(load_study([study_dir]), options())


def test_refuses_unknown_and_ambiguous_selectors(study_dir):
    study = load_study([study_dir])
    with pytest.raises(ReportError, match=r"treatment selector 'window=31' matches no arm with test rows; arms with "
                                          r"test rows: window=3, window=7,offset=1"):
        analyse(study, options(treatments=["window=31"]))
    with pytest.raises(ReportError, match=r"control selector 'baseline=median' matches no arm"):
        analyse(study, options(controls=["baseline=median"]))
    with pytest.raises(ReportError, match=r"control selector 'window=15' is ambiguous: it matches "
                                          r"window=15,offset=1, window=15,offset=2"):
        analyse(study, options(controls=["window=15"]))
    with pytest.raises(ReportError, match="malformed"):
        analyse(study, options(treatments=["window15"]))


def test_refuses_treatment_with_validation_rows_only(synth, tmp_path):
    root = synth.build_study(tmp_path / "s")
    shutil.rmtree(root / "confirm" / "window15_offset2")
    with pytest.raises(ReportError, match=r"window=15,offset=2 only has validation rows \(confirm stage missing\)"):
        analyse(load_study([root]), options(treatments=["offset=2"]))


def test_refuses_malformed_values(synth, tmp_path):
    base = synth.make_rows("window=3", synth.sample_ids(["a", "b"], [1, 2]))
    cases = {
        "psnr_text": (lambda d: d.assign(psnr=d["psnr"].astype(object).where(d.index != 1, "abc")),
                      r"column 'psnr' must be numeric; 1 row\(s\) are not \(e.g. 'abc'\)"),
        "lpips_nan": (lambda d: d.assign(lpips=d["lpips"].where(d.index != 0, np.nan)),
                      r"column 'lpips' row 0 \(sample_id 'video_folder/a/000001', arm 'window=3'\) is nan, expected a "
                      r"number in every test row"),
        "psnr_neg_inf": (lambda d: d.assign(psnr=d["psnr"].where(d.index != 0, -np.inf)),
                         r"column 'psnr' row 0 .* is -inf, expected a finite number or \+inf"),
        # Values a metric cannot take (issue 15, item 6): the table, the column and a row.
        "ssim_5": (lambda d: d.assign(ssim=d["ssim"].where(d.index != 2, 5.0)),
                   r"column 'ssim' row 2 \(sample_id 'video_folder/b/000001', arm 'window=3'\) is 5.0, expected "
                   r"within \[-1, 1\]; 1 row\(s\) like it"),
        "lpips_negative": (lambda d: d.assign(lpips=-3.0),
                           r"column 'lpips' row 0 .* is -3.0, expected non-negative; 4 row\(s\) like it"),
        "psnr_nan_val": (lambda d: d.assign(split="val", psnr=d["psnr"].where(d.index != 3, np.nan)),
                         r"column 'psnr' row 3 .* is nan, expected a number of dB \(PSNR is never NaN\)"),
        "epe_negative": (lambda d: d.assign(epe=d["epe"].where(d.index != 1, -0.5)),
                         r"column 'epe' row 1 .* is -0.5, expected non-negative"),
        "cluster_empty": (lambda d: d.assign(cluster_id=""), r"column 'cluster_id' is empty in 4 row"),
        "seed_float": (lambda d: d.assign(seed=0.5), r"column 'seed' must hold integers"),
        "arm_bad": (lambda d: d.assign(arm="window3"), r"arm 'window3' is malformed"),
        "video_empty": (lambda d: d.assign(video_id=""), r"column 'video_id' is empty in 4 row"),
    }
    for name, (edit, message) in cases.items():
        path = tmp_path / name / "samples.csv"
        path.parent.mkdir()
        edit(base.copy()).to_csv(path, index=False)
        with pytest.raises(ReportError, match=message) as err:
            read_table(path)
        assert str(path) in str(err.value), name


def test_refuses_sample_id_naming_two_videos(synth, tmp_path):
    samples = synth.sample_ids(["a", "b"], [1, 2])
    t = synth.make_rows("window=15,offset=1", samples)
    c = synth.make_rows("window=3", samples)
    c.loc[0, ["video_id", "cluster_id"]] = "b"
    with pytest.raises(ReportError, match=r"sample_id 'video_folder/a/000001' has different video_id values \(a, b\)"):
        combine_tables([t, c])
    c = synth.make_rows("window=3", samples)
    c.loc[0, "cluster_id"] = "elsewhere"
    with pytest.raises(ReportError, match=r"video_id 'a' has different cluster_id values \(a, elsewhere\)"):
        combine_tables([t, c])


def test_refuses_bad_options(study_dir):
    study = load_study([study_dir])
    with pytest.raises(ReportError, match=r"--alpha must be in \(0, 1\)"):
        analyse(study, options(alpha=1.5))
    with pytest.raises(ReportError, match=r"--psnr_cap must be a positive finite"):
        load_study([study_dir], psnr_cap=float("inf"))
    with pytest.raises(ReportError, match=r"unknown metric\(s\) fid"):
        load_study([study_dir], metrics=["psnr", "fid"])


def test_refuses_nothing_to_compare(synth, tmp_path):
    df = synth.make_rows("window=3", synth.sample_ids(["a", "b"], [1]))
    with pytest.raises(ReportError, match=r"nothing to compare: the test rows hold only the arm\(s\) window=3"):
        analyse(combine_tables([df]), options())


# ---------------------------------------------------------------------------------------------
# What is accepted, and how arms are chosen
# ---------------------------------------------------------------------------------------------

def test_csv_tables_and_parquet_preferred_over_its_csv_export(study_dir):
    path = first_table(study_dir)
    pd.read_parquet(path).to_csv(path.with_suffix(".csv"), index=False)  # same table twice in one run folder
    study = load_study([study_dir])
    assert not any(s.endswith(".csv") for s in study.sources)
    csv_only = study_dir / "confirm" / "window3" / "seed1"
    df = pd.read_parquet(csv_only / "samples.parquet")
    (csv_only / "samples.parquet").unlink()
    df.to_csv(csv_only / "samples.csv", index=False)
    study = load_study([study_dir])
    assert str((csv_only / "samples.csv").resolve()) in study.sources
    assert sorted(study.test.loc[study.test["arm"] == "window=3", "seed"].unique()) == [0, 1, 2]


def test_validation_rows_may_lack_metrics_and_are_not_tested(study_dir):
    path = study_dir / "tune" / "window3" / "trial0" / "samples.parquet"
    pd.read_parquet(path).assign(lpips=np.nan).to_parquet(path)
    a = analyse(load_study([study_dir]), options())
    assert all(c["n"] == 48 for c in a.results["comparisons"])  # test samples only (val has 12 other samples)
    assert not a.tables["validation"].empty


def test_default_treatment_is_best_by_validation(study_dir):
    a = analyse(load_study([study_dir]), options())
    pairs = [(c["treatment"], c["control"], c["family"]) for c in a.results["comparisons"]]
    assert pairs == [("window=15,offset=2", "window=3", "primary"), ("window=15,offset=2", "baseline=blend", "secondary"),
                     ("window=15,offset=2", "baseline=repeat", "secondary"),
                     ("window=7,offset=1", "window=3", "secondary"), ("window=15,offset=1", "window=3", "secondary"),
                     ("window=3", "baseline=blend", "sanity")]
    assert any("best validation PSNR" in n for n in a.notes)


def test_default_without_validation_compares_every_largest_window_arm(synth, tmp_path):
    root = synth.build_study(tmp_path / "s", val=False, summary=False, baselines=False)
    a = analyse(load_study([root]), options())
    primary = [c for c in a.results["comparisons"] if c["primary"]]
    assert [c["treatment"] for c in primary] == ["window=15,offset=1", "window=15,offset=2"]
    # Two primary treatments share alpha (Bonferroni); the window=7 arm is secondary.
    assert all(c["alpha_used"] == pytest.approx(0.025) for c in primary)
    assert [c["treatment"] for c in a.results["comparisons"] if not c["primary"]] == ["window=7,offset=1"]


def test_treatment_selector_matching_several_arms_compares_each_in_one_family(study_dir):
    a = analyse(load_study([study_dir]), options(treatments=["window=15"], controls=["window=3"]))
    primary = [c for c in a.results["comparisons"] if c["primary"]]
    assert [c["treatment"] for c in primary] == ["window=15,offset=1", "window=15,offset=2"]
    assert all(c["alpha_used"] == pytest.approx(0.025) for c in primary)
    assert any("matches several arms" in n for n in a.notes)


def test_baselines_become_primary_without_window3(synth, tmp_path):
    root = synth.build_study(tmp_path / "s", arms_gain={"window=15,offset=1": 0.5}, val=False, summary=False)
    a = analyse(load_study([root]), options())
    assert all(c["primary"] for c in a.results["comparisons"])
    assert any("no window=3 arm" in n for n in a.notes)


def test_inf_psnr_is_capped_and_counted(synth, tmp_path):
    samples = synth.sample_ids([f"v{i}" for i in range(8)], [1, 2])
    t = synth.make_rows("window=15,offset=1", samples, gain_db=1.0)
    c = synth.make_rows("baseline=repeat", samples)
    c.loc[[0, 1, 5], "psnr"] = np.inf  # static content: the repeated frame is identical to the target
    t.loc[[0], "psnr"] = np.inf
    study = combine_tables([t, c], psnr_cap=100.0)
    assert study.n_psnr_capped == {"baseline=repeat": 3, "window=15,offset=1": 1}
    a = analyse(study, options())
    comp = a.results["comparisons"][0]
    psnr = comp["metrics"][0]
    assert comp["n_psnr_capped"] == 3
    assert np.isfinite([psnr["mean_treatment"], psnr["mean_control"], psnr["mean_diff"], psnr["ci_low"]]).all()
    # Sample 0: both capped -> difference 0; samples 1 and 5: 100 - finite treatment -> large loss.
    t_cap = np.minimum(t["psnr"].to_numpy(), 100.0)
    c_cap = np.minimum(c["psnr"].to_numpy(), 100.0)
    assert psnr["mean_diff"] == pytest.approx(np.mean(t_cap - c_cap))
    assert any("3 sample(s) had PSNR above the ceiling" in x for x in a.caveats)


def test_partial_study_names_missing_arms_and_seeds(synth, tmp_path):
    root = synth.build_study(tmp_path / "s")
    shutil.rmtree(root / "confirm" / "window7_offset1")
    shutil.rmtree(root / "confirm" / "window15_offset1" / "seed1")
    summary = json.loads((root / "study_summary.json").read_text())
    summary["arms"].append("window=11,offset=1")
    (root / "study_summary.json").write_text(json.dumps(summary))
    a = analyse(load_study([root]), options())
    info = a.results["study"]
    assert info["missing_arms"] == ["window=7,offset=1", "window=11,offset=1"]
    assert info["missing_seeds"] == {"window=15,offset=1": [1]}
    text = " ".join(a.caveats)
    assert "window=7,offset=1, window=11,offset=1 appear in the tuning summary" in text
    assert "arm window=15,offset=1 lacks test seed(s) 1" in text
    assert "1 of 3 tuning trial(s) failed" in text


def test_unreadable_summary_is_a_note_not_a_refusal(study_dir):
    (study_dir / "study_summary.json").write_text("{not json")
    study = load_study([study_dir])
    assert any("study summary ignored" in n for n in study.notes)
    assert analyse(study, options()).results["comparisons"]


def test_caveats_few_videos_sample_level_only_and_one_sample_per_video(synth, tmp_path):
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


def test_caveats_seeds_disagree_and_worse_metric(synth, tmp_path):
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


def test_library_use_on_dataframes_without_files(synth):
    samples = synth.sample_ids([f"v{i}" for i in range(10)], [1, 2])
    study = combine_tables([synth.make_rows(arm, samples, gain_db=gain, seed=s)
                            for arm, gain in (("window=15,offset=1", 1.0), ("window=3", 0.0)) for s in (0, 1, 2)])
    a = analyse(study, options())
    assert a.results["reject_h0"] is True and a.results["verdict"] == "H0 rejected"
    assert a.results["decision"].startswith("H0 rejected at alpha=0.05: window=15,offset=1 improves over window=3")


def test_summary_in_the_study_writers_shape(tmp_path, synth):
    """lift.tune.study writes arms as objects and trials with `params`; the report reads both shapes."""
    root = synth.build_study(tmp_path / "s", summary=False)
    arms = ["window=3", "window=7,offset=1", "window=15,offset=1", "window=15,offset=2"]
    summary = {
        "study": "toy", "complete": False,
        "arms": [{"key": a, "slug": a.replace("=", ""), "best_trial": f"{a}-t1",
                  "best_val_psnr": 31.5 if a == "window=15,offset=1" else 30.0, "best_params": {"optim.lr": 1e-3}}
                 for a in arms],
        "trials": [{"trial_id": f"{a}-t{k}", "arm": a, "status": s, "best_val_psnr": 30.0 + k, "params": {"optim.lr": k}}
                   for a in arms for k, s in enumerate(["COMPLETED", "STOPPED_EARLY", "ERROR"])],
        "confirm": [{"trial_id": "c1", "arm": "window=3", "seed": 2, "status": "ERROR"}],
        "failed_trials": 5,
        "optuna": {"storage": "sqlite:///x/optuna.db"},
    }
    (root / "study_summary.json").write_text(json.dumps(summary))
    a = analyse(load_study([root]), options())
    # The study's own best trial (by final val PSNR) picks the window=15 treatment.
    assert a.results["comparisons"][0]["treatment"] == "window=15,offset=1"
    tuning = a.tables["tuning"].set_index("arm")
    assert tuning.loc["window=3", "n_trials"] == 3 and tuning.loc["window=3", "n_failed"] == 1
    assert tuning.loc["window=3", "n_stopped_early"] == 1
    assert tuning.loc["window=15,offset=1", "best_val_psnr"] == 31.5
    assert json.loads(tuning.loc["window=3", "best_config"]) == {"optim.lr": 0.001}
    text = " ".join(a.caveats)
    assert "arm window=3: the confirm run with seed 2 failed" in text
    assert any("not complete" in n for n in a.notes)
    assert a.study.summary["optuna_storage"] == "sqlite:///x/optuna.db"


def test_optuna_storage_follows_a_moved_study_folder(study_dir):
    summary = json.loads((study_dir / "study_summary.json").read_text())
    summary["optuna_storage"] = "sqlite:////somewhere/else/optuna.db"  # where the study ran
    (study_dir / "study_summary.json").write_text(json.dumps(summary))
    (study_dir / "optuna.db").write_bytes(b"")
    assert load_study([study_dir]).summary["optuna_storage"] == f"sqlite:///{study_dir / 'optuna.db'}"
