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


def test_unreadable_summary_is_a_note_not_a_refusal(study_dir):
    (study_dir / "study_summary.json").write_text("{not json")
    study = load_study([study_dir])
    assert any("study summary ignored" in n for n in study.notes)
    assert analyse(study, options()).results["comparisons"]


def test_optuna_storage_follows_a_moved_study_folder(study_dir):
    summary = json.loads((study_dir / "study_summary.json").read_text())
    summary["optuna_storage"] = "sqlite:////somewhere/else/optuna.db"  # where the study ran
    (study_dir / "study_summary.json").write_text(json.dumps(summary))
    (study_dir / "optuna.db").write_bytes(b"")
    assert load_study([study_dir]).summary["optuna_storage"] == f"sqlite:///{study_dir / 'optuna.db'}"
