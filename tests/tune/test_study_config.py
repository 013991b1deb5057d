"""Study config: presets, arms, per-arm training configs, overrides and every refusal."""

from __future__ import annotations

import pytest
import yaml

from lift.tune.study_config import (
    StudyError,
    arm_train_config,
    arms_of,
    confirm_seeds,
    eval_extent,
    load_study_config,
    study_from_dict,
    study_to_yaml,
)


def test_presets_load_and_define_arms() -> None:
    default = load_study_config("footage")
    assert [a.key for a in arms_of(default)] == ["window=3", "window=7,offset=1", "window=15,offset=1"]
    ucf = load_study_config("ucf101")
    keys = [a.key for a in arms_of(ucf)]
    # Window 3 once (its offset means nothing), every other window with every offset.
    assert keys.count("window=3") == 1 and len(keys) == 1 + 2 * 3
    assert ucf.resources.gpus_per_trial == 0.25
    # The component ablation: the window-15 base, then the window, three loss terms and two model
    # options each changed alone.
    ablation = arms_of(load_study_config("ablation"))
    assert ablation[0].key == ("window=15,offset=1,loss.anchor_reconstruction=1,loss.census=0.1,loss.lpips=0.1,"
                               "model.quadratic_extrapolation=false,model.reference_matching=true")
    assert [a.changes for a in ablation[1:]] == [("data.window",), ("loss.anchor_reconstruction",), ("loss.census",),
                                                 ("loss.lpips",), ("model.quadratic_extrapolation",),
                                                 ("model.reference_matching",)]


def test_every_arm_evaluates_on_the_largest_window_and_offset() -> None:
    cfg = load_study_config("footage", ["arms.windows=[3,7,15]", "arms.offsets=[1,4]"])
    assert eval_extent(cfg) == (15, 4)
    for arm in arms_of(cfg):
        tcfg = arm_train_config(cfg, arm)
        assert (tcfg.data.window, tcfg.data.temporal_offset) == (arm.window, arm.temporal_offset)
        assert (tcfg.data.eval_max_window, tcfg.data.eval_max_offset) == (15, 4)
        assert tcfg.train.val_every == 1 and tcfg.train.seed == cfg.seed


def test_search_values_and_seed_reach_the_training_config() -> None:
    cfg = load_study_config("footage")
    arm = arms_of(cfg)[1]
    tcfg = arm_train_config(cfg, arm, {"optim.lr": 1.5e-3, "loss.lpips": 0.05}, seed=1234)
    assert tcfg.optim.lr == 1.5e-3 and tcfg.loss.lpips == 0.05 and tcfg.train.seed == 1234
    assert len(set(confirm_seeds(cfg))) == cfg.confirm.seeds and cfg.seed not in confirm_seeds(cfg)


def test_overrides_route_to_study_or_training() -> None:
    cfg = load_study_config("footage", ["search.num_samples=7", "train.epochs=2", "data.data_root=/x",
                                        "search.space.loss.census=null"])
    assert cfg.search.num_samples == 7
    assert cfg.lift.overrides["train.epochs"] == 2 and cfg.lift.overrides["data.data_root"] == "/x"
    assert "loss.census" not in cfg.search.space
    assert arm_train_config(cfg, arms_of(cfg)[0]).train.epochs == 2


@pytest.mark.parametrize("override, words", [
    (["arms.windows=[3,8]"], ["arms.windows", "odd"]),
    (["arms.offsets=[0]"], ["arms.offsets", ">= 1"]),
    (["search.num_samples=0"], ["search.num_samples"]),
    (["search.nope=1"], ["unknown study key", "search.nope"]),
    (["search.space.optim.lr={low: 0, high: 1, log: true}"], ["search.space.optim.lr", "low > 0"]),
    (["search.space.optim.lr={low: 1, high: 0.1}"], ["search.space.optim.lr", "low < high"]),
    (["search.space.data.window={low: 3, high: 7}"], ["search.space.data.window", "loss.* or optim.*"]),
    (["search.space.loss.lpips={low: -1, high: 0.5}"], ["search.space.loss.lpips", "non-negative"]),
    (["data.window=7"], ["data.window", "set by the study"]),
    (["train.seed=3"], ["train.seed", "set by the study"]),
    (["asha.grace_period=99"], ["asha.grace_period", "train.epochs"]),
    (["resources.gpus_per_trial=1.5"], ["resources.gpus_per_trial"]),
    (["train.epochs=0"], ["train.epochs"]),
    (["model.nope=1"], ["model.nope"]),
    (["noequals"], ["KEY=VALUE"]),
])
def test_invalid_settings_name_the_key(override: list[str], words: list[str]) -> None:
    with pytest.raises(StudyError) as err:
        load_study_config("footage", override)
    for word in words:
        assert word in str(err.value)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(StudyError, match="presets: ablation, control_negative, control_negative_scratch, control_positive, control_positive_scratch, footage, ucf101"):
        load_study_config("nope")


# ---------------------------------------------------------------------------------------------
# Any factor is an arm: arms.factors and arms.design
# ---------------------------------------------------------------------------------------------

# Two loss terms and a model option around window 15 (loss.lpips and loss.census leave the search).
ABLATION = ["arms.windows=null", "arms.offsets=null", "arms.factors.data.window=[15]",
            "arms.factors.data.temporal_offset=[1]", "arms.factors.loss.lpips=[0.1,0]",
            "arms.factors.loss.census=[0.1,0]", "arms.factors.model.quadratic_extrapolation=[true,false]",
            "search.space.loss.lpips=null", "search.space.loss.census=null"]
BASE = "window=15,offset=1,loss.census=0.1,loss.lpips=0.1,model.quadratic_extrapolation=true"


def test_one_at_a_time_is_the_base_and_one_change_per_factor_level() -> None:
    cfg = load_study_config("footage", ABLATION + ["arms.design=one_at_a_time"])
    arms = arms_of(cfg)
    assert [a.key for a in arms] == [
        BASE,
        "window=15,offset=1,loss.census=0,loss.lpips=0.1,model.quadratic_extrapolation=true",
        "window=15,offset=1,loss.census=0.1,loss.lpips=0,model.quadratic_extrapolation=true",
        "window=15,offset=1,loss.census=0.1,loss.lpips=0.1,model.quadratic_extrapolation=false",
    ]
    assert [a.changes for a in arms] == [(), ("loss.census",), ("loss.lpips",), ("model.quadratic_extrapolation",)]
    assert arms[0].is_base and [a.index for a in arms] == [0, 1, 2, 3]
    assert arms[3].slug == "w15_o1_loss.census-0.1_loss.lpips-0.1_model.quadratic_extrapolation-false"
    # Each arm trains its own values; everything else is the study's.
    tcfg = arm_train_config(cfg, arms[2], {"optim.lr": 1e-3})
    assert (tcfg.loss.lpips, tcfg.loss.census, tcfg.model.quadratic_extrapolation) == (0.0, 0.1, True)
    assert (tcfg.data.window, tcfg.data.temporal_offset, tcfg.optim.lr) == (15, 1, 1e-3)
    assert eval_extent(cfg) == (15, 1)


def test_grid_is_every_combination() -> None:
    cfg = load_study_config("footage", ABLATION)
    arms = arms_of(cfg)
    assert cfg.arms.design == "grid" and len(arms) == 2 * 2 * 2 and arms[0].key == BASE
    assert len({a.key for a in arms}) == 8
    assert sorted(len(a.changes) for a in arms) == [0, 1, 1, 1, 2, 2, 2, 3]


def test_a_base_other_than_the_first_levels() -> None:
    cfg = load_study_config("footage", ABLATION + ["arms.design=one_at_a_time", "arms.base.loss.lpips=0"])
    arms = arms_of(cfg)
    assert arms[0].factors["loss.lpips"] == 0.0 and len(arms) == 4
    assert [a.changes for a in arms[1:]] == [("loss.census",), ("loss.lpips",), ("model.quadratic_extrapolation",)]
    assert arms[2].factors["loss.lpips"] == 0.1


def test_window_and_offset_shorthand_equals_the_factors() -> None:
    short = load_study_config("footage", ["arms.windows=[15,3]", "arms.offsets=[2,1]"])
    long = load_study_config("footage", ["arms.windows=null", "arms.offsets=null", "arms.factors.data.window=[15,3]",
                                         "arms.factors.data.temporal_offset=[2,1]"])
    assert [(a.key, a.slug) for a in arms_of(short)] == [(a.key, a.slug) for a in arms_of(long)] == [
        ("window=3", "w3"), ("window=15,offset=1", "w15_o1"), ("window=15,offset=2", "w15_o2")]
    assert [arm_train_config(short, a).to_dict() for a in arms_of(short)] == \
           [arm_train_config(long, a).to_dict() for a in arms_of(long)]


def test_window_3_ignores_the_offset_in_any_design() -> None:
    cfg = load_study_config("footage", ["arms.windows=null", "arms.offsets=null", "arms.design=one_at_a_time",
                                        "arms.factors.data.window=[3,15]", "arms.factors.data.temporal_offset=[1,2]",
                                        "arms.factors.model.refine=[true,false]"])
    assert [a.key for a in arms_of(cfg)] == ["window=3,model.refine=true", "window=15,offset=1,model.refine=true",
                                             "window=3,model.refine=false"]


@pytest.mark.parametrize("override, words", [
    (["arms.factors.loss.lpipz=[0,0.1]"], ["arms.factors.loss.lpipz", "unknown config key"]),
    (["arms.factors.loss.lpips=[0,0.1]"], ["arms.factors.loss.lpips", "search.space"]),
    (["search.space.loss.lpips=null", "arms.factors.loss.lpips=[0,high]"], ["arms.factors.loss.lpips[1]", "number"]),
    (["arms.factors.model.quadratic_extrapolation=[true,2]"], ["arms.factors.model.quadratic_extrapolation[1]",
                                                                "true or false"]),
    (["arms.factors.model.block_depth=[2,2.5]"], ["arms.factors.model.block_depth[1]", "integer"]),
    (["arms.windows=null", "arms.factors.data.window=[3,4]"], ["arms.factors.data.window[1]", "odd"]),
    (["arms.windows=[3,4]"], ["arms.windows[1]", "odd"]),
    (["arms.factors.data.window=[15]"], ["arms.windows", "arms.factors.data.window", "both"]),
    (["arms.factors.loss.smoothness=[-1,0]", "search.space.loss.smoothness=null"],
     ["arms.factors.loss.smoothness[0]", "non-negative"]),
    (["arms.factors.model.refine=[true,true]"], ["arms.factors.model.refine", "each level once"]),
    (["arms.factors.model.refine=true"], ["arms.factors.model.refine", "list of levels"]),
    (["arms.factors.eval.lpips=[true,false]"], ["arms.factors.eval.lpips", "what an arm trains"]),
    (["arms.factors.data.gap=[2,4]"], ["arms.factors.data.gap", "same sample ids"]),
    (["arms.factors.train.epochs=[1,2]"], ["arms.factors.train.epochs", "budget"]),
    (["arms.factors.train.seed=[1,2]"], ["arms.factors.train.seed", "the study sets it"]),
    (["arms.factors.data.crop_size=[[32,32]]"], ["arms.factors.data.crop_size", "list"]),
    (["model.refine=false", "arms.factors.model.refine=[true,false]"], ["arms.factors.model.refine",
                                                                        "lift.overrides"]),
    (["arms.design=fractional"], ["arms.design", "one_at_a_time"]),
    (["arms.base.model.refine=false"], ["arms.base.model.refine", "factor of the study"]),
    (["arms.factors.model.refine=[true]", "arms.base.model.refine=false"], ["arms.base.model.refine",
                                                                            "one of its levels"]),
])
def test_misconfigured_factors_are_refused_naming_the_key(override: list[str], words: list[str]) -> None:
    with pytest.raises(StudyError) as err:
        load_study_config("footage", override)
    for word in words:
        assert word in str(err.value)


def test_factors_from_a_study_file(tmp_path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("arms:\n  design: one_at_a_time\n  factors:\n    data.window: [15]\n"
                    "    model.quadratic_extrapolation: [true, false]\n")
    cfg = load_study_config(path)
    assert [a.key for a in arms_of(cfg)] == ["window=15,offset=1,model.quadratic_extrapolation=true",
                                             "window=15,offset=1,model.quadratic_extrapolation=false"]
    path.write_text("arms:\n  factors:\n    loss:\n      lpips: [0, 0.1]\n")
    with pytest.raises(StudyError, match=r"arms.factors.loss: .*expected a non-empty list of levels"):
        load_study_config(path)


@pytest.mark.parametrize("preset, overrides", [("footage", []), ("ablation", ["arms.base.loss.lpips=0"]),
                                               ("footage", ["search.space.loss.census=null"]),
                                               ("control_positive", []), ("control_negative", [])])
def test_the_stored_study_reads_back_to_the_same_study(preset: str, overrides: list[str]) -> None:
    """What a resume compares: study.yaml read back must be the study, removed search parameters
    and arm factors included."""
    cfg = load_study_config(preset, overrides)
    back = study_from_dict(yaml.safe_load(study_to_yaml(cfg)))
    assert back.identity() == cfg.identity()
    assert [a.key for a in arms_of(back)] == [a.key for a in arms_of(cfg)]


def test_report_section_and_budget_rule() -> None:
    cfg = load_study_config("footage", ["report.endpoints=[lpips,psnr]", "report.procedure=holm",
                                        "report.sesoi={psnr: 0.3}", "arms.windows=[3,15]", "arms.offsets=[1,2,4]",
                                        "search.num_samples=5"])
    fam = cfg.report.family()
    assert fam.endpoints == ("lpips", "psnr") and fam.procedure == "holm" and fam.sesoi_of("psnr") == 0.3
    from lift.tune.study_config import trials_per_arm

    assert trials_per_arm(cfg) == {"window=3": 15, "window=15,offset=1": 5, "window=15,offset=2": 5,
                                   "window=15,offset=4": 5}
    assert load_study_config("footage").confirm.seeds == 3
    for override, words in ((["report.procedure=bonferroni"], "report.procedure"),
                            (["report.endpoints=[psnr,fid]"], "report.endpoints"),
                            (["report.alpha=1.5"], "report.alpha"),
                            (["report.sesoi={psnr: -1}"], "report.sesoi.psnr")):
        with pytest.raises(StudyError, match=words):
            load_study_config("footage", override)
