"""A tiny `one_at_a_time` ablation study through real Ray Tune: a base arm (window 7, quadratic
reference-flow extrapolation, no census loss) and one arm per factor change (window 3, the census
loss on, linear extrapolation). Checked: the arms (count, names, what each changes), equal tuning
budgets, every arm's tables labelled with its name and on the same test sample ids.
Everything is real: lift.train.fit trains a tiny network on the embedded real clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from lift.model import pretrained
from lift.evaluate import read_samples_table
from lift.report import ReportOptions, make_report
from lift.tune.study import run_study
from lift.tune.study_config import load_study_config

pytestmark = pytest.mark.slow

FACTORS = [
    "arms.windows=null", "arms.offsets=null", "arms.design=one_at_a_time",
    "arms.factors.data.window=[7,3]",
    "arms.factors.loss.census=[0,0.1]", "search.space.loss.census=null",
    "arms.factors.model.quadratic_extrapolation=[true,false]",
]
BASE = "window=7,offset=1,loss.census=0,model.quadratic_extrapolation=true"
ARMS = {
    BASE: [],
    "window=3,loss.census=0,model.quadratic_extrapolation=true": ["data.window"],
    "window=7,offset=1,loss.census=0.1,model.quadratic_extrapolation=true": ["loss.census"],
    "window=7,offset=1,loss.census=0,model.quadratic_extrapolation=false": ["model.quadratic_extrapolation"],
}


@pytest.fixture(scope="module")
def ablation(ray_session: str, tiny_study, tmp_path_factory) -> dict[str, Any]:
    cfg = load_study_config("footage", [*tiny_study, *FACTORS])
    out = tmp_path_factory.mktemp("ablation") / "study"
    outcome = run_study(cfg, out, verbose=0, log=lambda *_: None, allow_underpowered=True)
    return {"cfg": cfg, "out": out, "summary": outcome.summary}


def test_the_arms_are_the_base_and_one_change_each(ablation) -> None:
    s = ablation["summary"]
    assert s["design"] == "one_at_a_time" and s["base_arm"] == BASE
    assert {a["key"]: a["changes"] for a in s["arms"]} == ARMS
    by_key = {a["key"]: a for a in s["arms"]}
    assert by_key[BASE]["factors"] == {"data.window": 7, "data.temporal_offset": 1, "loss.census": 0.0,
                                       "model.quadratic_extrapolation": True}
    # Each arm trained its own values: the resolved training configs say so.
    for arm in s["arms"]:
        trained = Path(arm["training_config"]).read_text()
        assert f"quadratic_extrapolation: {str(arm['factors']['model.quadratic_extrapolation']).lower()}" in trained
        assert f"census: {arm['factors']['loss.census']}" in trained


def test_every_arm_gets_the_same_tuning_budget(ablation) -> None:
    s, cfg = ablation["summary"], ablation["cfg"]
    per_arm = {key: [t for t in s["trials"] if t["arm"] == key] for key in ARMS}
    assert {key: len(ts) for key, ts in per_arm.items()} == {key: cfg.search.num_samples for key in ARMS}
    for key, trials in per_arm.items():
        assert all(set(t["params"]) == set(cfg.search.space) for t in trials), key
        ot = optuna.load_study(study_name=f"{cfg.name}/{key}", storage=s["optuna"]["storage"]).trials
        assert len(ot) == cfg.search.num_samples
    assert {(r["arm"], r["seed"]) for r in s["confirm"]} == {(key, 1000) for key in ARMS}


def test_every_arm_is_named_in_its_tables_and_shares_the_test_sample_ids(ablation) -> None:
    s = ablation["summary"]
    test = read_samples_table(Path(s["test_table"]))
    published = {"baseline=rife_hd"} if pretrained.available() else set()  # fetched by make rife-weights
    assert set(test["arm"]) == set(ARMS) | {"baseline=repeat", "baseline=blend"} | published
    ids = {arm: frozenset(g["sample_id"]) for arm, g in test.groupby("arm")}
    assert len(set(ids.values())) == 1 and len(next(iter(ids.values()))) > 0
    for trial in s["trials"]:  # tuning tables: split val, the trial's arm name
        val = read_samples_table(Path(trial["path"]) / "samples.parquet")
        assert set(val["arm"]) == {trial["arm"]} and set(val["split"]) == {"val"}


def test_the_report_has_the_ablation_table(ablation, tmp_path) -> None:
    """The report on the real study folder: the primary comparison is the base against its window-3 change,
    and the ablation table has one row per factor change, in the study's arm order."""
    analysis, written = make_report([ablation["out"]], tmp_path / "report", options=ReportOptions(n_permutations=200),
                                    make_plots=False)
    primary = [c for c in analysis.results["comparisons"] if c["primary"]]
    assert [(c["treatment"], c["control"]) for c in primary] == [(BASE, "window=3,loss.census=0,model.quadratic_extrapolation=true")]
    rows = analysis.results["ablation"]["rows"]
    assert [(r["factor"], r["changed_arm"]) for r in rows] == [(changes[0], arm) for arm, changes in ARMS.items() if changes]
    assert all(r["base_arm"] == BASE and r["treatment"] == BASE for r in rows)
    assert [r["family"] for r in rows] == ["primary", "secondary", "secondary"]
    assert "## Ablation table" in written["report"].read_text()
