"""Study config: presets, arms, per-arm training configs, overrides and every refusal."""

from __future__ import annotations

import pytest

from lift.tune.study_config import (
    StudyError,
    arm_train_config,
    arms_of,
    confirm_seeds,
    eval_extent,
    load_study_config,
)


def test_presets_load_and_define_arms() -> None:
    default = load_study_config("default")
    assert [a.key for a in arms_of(default)] == ["window=3", "window=7,offset=1", "window=15,offset=1"]
    ucf = load_study_config("ucf101")
    keys = [a.key for a in arms_of(ucf)]
    # Window 3 once (its offset means nothing), every other window with every offset.
    assert keys.count("window=3") == 1 and len(keys) == 1 + 2 * 3
    assert ucf.resources.gpus_per_trial == 0.25


def test_every_arm_evaluates_on_the_largest_window_and_offset() -> None:
    cfg = load_study_config("default", ["arms.windows=[3,7,15]", "arms.offsets=[1,4]"])
    assert eval_extent(cfg) == (15, 4)
    for arm in arms_of(cfg):
        tcfg = arm_train_config(cfg, arm)
        assert (tcfg.data.window, tcfg.data.temporal_offset) == (arm.window, arm.temporal_offset)
        assert (tcfg.data.eval_max_window, tcfg.data.eval_max_offset) == (15, 4)
        assert tcfg.train.val_every == 1 and tcfg.train.seed == cfg.seed


def test_search_values_and_seed_reach_the_training_config() -> None:
    cfg = load_study_config("default")
    arm = arms_of(cfg)[1]
    tcfg = arm_train_config(cfg, arm, {"optim.lr": 1.5e-3, "loss.lpips": 0.05}, seed=1234)
    assert tcfg.optim.lr == 1.5e-3 and tcfg.loss.lpips == 0.05 and tcfg.train.seed == 1234
    assert len(set(confirm_seeds(cfg))) == cfg.confirm.seeds and cfg.seed not in confirm_seeds(cfg)


def test_overrides_route_to_study_or_training() -> None:
    cfg = load_study_config("default", ["search.num_samples=7", "train.epochs=2", "data.data_root=/x",
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
        load_study_config("default", override)
    for word in words:
        assert word in str(err.value)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(StudyError, match="presets: .*default.*ucf101"):
        load_study_config("nope")


def test_report_section_and_budget_rule() -> None:
    cfg = load_study_config("default", ["report.endpoints=[lpips,psnr]", "report.procedure=holm",
                                        "report.sesoi={psnr: 0.3}", "arms.windows=[3,15]", "arms.offsets=[1,2,4]",
                                        "search.num_samples=5"])
    fam = cfg.report.family()
    assert fam.endpoints == ("lpips", "psnr") and fam.procedure == "holm" and fam.sesoi_of("psnr") == 0.3
    from lift.tune.study_config import trials_per_arm

    assert trials_per_arm(cfg) == {"window=3": 15, "window=15,offset=1": 5, "window=15,offset=2": 5,
                                   "window=15,offset=4": 5}
    assert load_study_config("default").confirm.seeds == 3
    for override, words in ((["report.procedure=bonferroni"], "report.procedure"),
                            (["report.endpoints=[psnr,fid]"], "report.endpoints"),
                            (["report.alpha=1.5"], "report.alpha"),
                            (["report.sesoi={psnr: -1}"], "report.sesoi.psnr")):
        with pytest.raises(StudyError, match=words):
            load_study_config("default", override)
