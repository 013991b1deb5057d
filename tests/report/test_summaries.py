"""lift.report.summaries: the completeness of a study (missing arms and seeds) and the tuning table, read
from the study summary in the shape lift.tune.study writes it."""

from __future__ import annotations

import json
import shutil

from lift.report import analyse, load_study


def test_partial_study_names_missing_arms_and_seeds(synth, tmp_path, options):
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


def test_summary_in_the_study_writers_shape(tmp_path, synth, options):
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
