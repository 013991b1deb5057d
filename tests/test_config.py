"""lift.config: loading, merging, overriding, saving and every validation error path."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest
import yaml

from lift.config import (
    CONFIG_DIR,
    Config,
    ConfigError,
    apply_overrides,
    coerce_value,
    config_from_dict,
    field_type,
    load_config,
    parse_override,
    read_yaml,
    save_config,
)


def test_defaults_are_valid() -> None:
    # Loading nothing validates the defaults and changes none of them.
    assert load_config() == Config()


def _leaves(values: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# study_*.yaml are study presets (studies/context_ablation.py), with a schema of their own.
@pytest.mark.parametrize("preset", sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("study_")))
def test_every_preset_loads_with_its_values_applied(preset: str, tmp_path) -> None:
    cfg = load_config(preset)
    data = read_yaml(CONFIG_DIR / f"{preset}.yaml")
    data.pop("base", None)
    loaded = _leaves(cfg.to_dict())
    for key, value in _leaves(data).items():
        assert loaded[key] == coerce_value(value, field_type(key), key), key
    # And the resolved config reproduces itself through its YAML.
    assert load_config(save_config(cfg, tmp_path / "resolved.yaml")) == cfg


def test_preset_base_chain_merges() -> None:
    default, smoke = load_config("default"), load_config("smoke")
    assert smoke.name == "smoke"
    assert smoke.data.frame_size == default.data.frame_size  # inherited from base
    assert smoke.train.epochs < default.train.epochs  # overridden


def test_preset_by_path(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("base: smoke\ntrain:\n  batch_size: 3\n")
    cfg = load_config(f)
    assert cfg.train.batch_size == 3 and cfg.name == "smoke"


def test_dotted_and_flat_overrides() -> None:
    cfg = load_config("smoke", ["optim.lr=2e-4", "batch_size=5", "data.crop_size=[32, 48]", "data.max_sequences=null"])
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.train.batch_size == 5
    assert cfg.data.crop_size == [32, 48]
    assert cfg.data.max_sequences is None
    cfg = apply_overrides(cfg, {"window": 7, "temporal_offset": 2, "dataset": "synthetic"})
    assert (cfg.data.window, cfg.data.temporal_offset, cfg.data.dataset) == (7, 2, "synthetic")


def test_yaml_boolean_words_stay_text_for_choices() -> None:
    cfg = load_config("smoke", ["train.amp=off", "data.augment=off", "train.deterministic=yes"])
    assert cfg.train.amp == "off" and cfg.data.augment is False and cfg.train.deterministic is True


def test_overrides_do_not_mutate_the_input() -> None:
    base = load_config("smoke")
    apply_overrides(base, ["train.batch_size=7"])
    assert base.train.batch_size != 7


def test_string_coercions() -> None:
    cfg = config_from_dict({"data": {"crop_size": "48x64", "augment": "false"}, "train": {"epochs": "3"}})
    assert cfg.data.crop_size == [48, 64] and cfg.data.augment is False and cfg.train.epochs == 3


def test_save_and_reload_reproduces(tmp_path: Path) -> None:
    cfg = load_config("ucf101", ["optim.lr=1e-4", "loss.census=0.1"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(path) == cfg
    assert not list((tmp_path / "run").glob("*.tmp"))


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("data.windw=7", "unknown config key 'data.windw'"),
        ("trian.epochs=3", "unknown config key 'trian'"),
        ("batchsize=3", "unknown config key 'batchsize'"),
        ("data.window=4", "data.window: got 4; expected an odd integer >= 3"),
        ("data.window=1", "data.window: got 1"),
        ("data.window=seven", "data.window: got 'seven'; expected an integer"),
        ("data.window=7.5", "data.window: got 7.5; expected an integer"),
        ("data.temporal_offset=0", "data.temporal_offset: got 0"),
        ("data.gap=1", "data.gap: got 1"),
        ("data.eval_max_window=1", "data.eval_max_window: got 1"),
        ("data.eval_max_offset=0", "data.eval_max_offset: got 0"),
        ("data.eval_targets_per_video=0", "data.eval_targets_per_video: got 0"),
        ("data.crop_size=[64]", "data.crop_size: got [64]; expected [height, width]"),
        ("data.crop_size=[0, 64]", "data.crop_size: got [0, 64]"),
        ("data.eval_crop=[64, -1]", "data.eval_crop"),
        ("data.frame_size=[1, 2, 3]", "data.frame_size"),
        ("data.max_sequences=0", "data.max_sequences: got 0"),
        ("data.train_samples_per_epoch=0", "data.train_samples_per_epoch: got 0"),
        ("data.segment_length=2", "data.segment_length: got 2"),
        ("data.val_fraction=1.5", "data.val_fraction: got 1.5"),
        ("data.test_fraction=-0.1", "data.test_fraction: got -0.1"),
        ("data.ucf_split=4", "data.ucf_split: got 4; expected 1, 2 or 3"),
        ("data.color_jitter=0.9", "data.color_jitter: got 0.9"),
        ("data.num_workers=-1", "data.num_workers: got -1"),
        ("data.prefetch_factor=0", "data.prefetch_factor: got 0"),
        ("data.loader_timeout_s=0", "data.loader_timeout_s: got 0.0; expected a number of seconds > 0"),
        ("data.loader_timeout_s=soon", "data.loader_timeout_s: got 'soon'"),
        ("data.on_bad_video=ignore", "data.on_bad_video: got 'ignore'; allowed values are 'error', 'skip'"),
        ("data.augment=maybe", "data.augment: got 'maybe'; expected true or false"),
        ("model.width=0", "model.width: got 0.0"),
        ("model.block_scales=[1, 2, 4]", "model.block_scales: got [1, 2, 4]"),
        ("model.block_scales=[]", "model.block_scales: got []"),
        ("model.block_depth=0", "model.block_depth: got 0"),
        ("loss.census=-1", "loss.census: got -1.0; expected a non-negative weight"),
        ("loss.reconstruction=0", "loss.reconstruction: got 0.0; expected a positive weight"),
        ("loss.pyramid_levels=0", "loss.pyramid_levels: got 0"),
        ("optim.lr=0", "optim.lr: got 0.0"),
        ("optim.lr=fast", "optim.lr: got 'fast'; expected a number"),
        ("optim.min_lr=1", "optim.min_lr: got 1.0"),
        ("optim.weight_decay=-1", "optim.weight_decay: got -1.0"),
        ("optim.betas=[0.9]", "optim.betas: got [0.9]"),
        ("optim.warmup_steps=-1", "optim.warmup_steps: got -1"),
        ("optim.grad_clip=-1", "optim.grad_clip: got -1.0"),
        ("optim.accum_steps=0", "optim.accum_steps: got 0"),
        ("optim.scheduler=step", "optim.scheduler: got 'step'"),
        ("train.epochs=0", "train.epochs: got 0"),
        ("train.batch_size=0", "train.batch_size: got 0"),
        ("train.eval_batch_size=0", "train.eval_batch_size: got 0"),
        ("train.amp=fp8", "train.amp: got 'fp8'; allowed values are 'auto', 'bf16', 'fp16', 'off'"),
        ("train.device=tpu", "train.device: got 'tpu'"),
        ("train.val_every=0", "train.val_every: got 0"),
        ("train.snapshot_every=-1", "train.snapshot_every: got -1"),
        ("train.max_steps_per_epoch=0", "train.max_steps_per_epoch: got 0"),
        ("train.max_nonfinite_steps=0", "train.max_nonfinite_steps: got 0"),
        ("eval.protocol=vfi", "eval.protocol: got 'vfi'"),
        ("eval.lpips_weights=''", "eval.lpips_weights"),
        ("logging.log_every=0", "logging.log_every: got 0"),
        ("logging.image_every=-1", "logging.image_every: got -1"),
        ("logging.num_images=-1", "logging.num_images: got -1"),
        ("logging.progress=loud", "logging.progress: got 'loud'"),
        ("logging.progress_interval_s=0", "logging.progress_interval_s: got 0.0"),
        ("data=3", "data: expected a mapping"),
    ],
)
def test_every_validation_error_names_field_and_value(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("smoke", [override])
    assert fragment in str(err.value)


def test_fractions_must_leave_training_data() -> None:
    with pytest.raises(ConfigError, match=r"data.val_fraction \+ data.test_fraction"):
        load_config(None, ["data.val_fraction=0.5", "data.test_fraction=0.5"])


def test_eval_window_must_cover_the_training_window() -> None:
    with pytest.raises(ConfigError, match="expected an odd integer >= data.window"):
        load_config(None, ["data.window=7", "data.eval_max_window=5"])


@pytest.mark.parametrize("text", ["no_equals_sign", "=3"])
def test_malformed_override(text: str) -> None:
    with pytest.raises(ConfigError, match="override"):
        parse_override(text)


def test_missing_and_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a file nor a preset; presets: .*smoke"):
        load_config("no_such_preset")


def test_bad_yaml_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{broken}.*not valid YAML"):
        load_config(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_config(listy)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=f"config file {typo}: unknown config key 'train.epoch'"):
        load_config(typo)


def test_base_loop_is_an_error(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"base: {b}\n")
    b.write_text(f"base: {a}\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(a)


def test_saved_yaml_is_plain(tmp_path: Path) -> None:
    path = save_config(load_config("default"), tmp_path / "config.yaml")
    data = yaml.safe_load(path.read_text())
    assert set(data) == {f.name for f in dataclasses.fields(Config)}


def test_field_type_of_a_dotted_key() -> None:
    assert field_type("loss.lpips") is float and field_type("model.quadratic_extrapolation") is bool
    assert field_type("data.train_samples_per_epoch") == int | None
    for key, words in [("loss.lpipz", "unknown config key 'loss.lpipz'"), ("loss", "is a section"),
                       ("loss.lpips.x", "is a value, not a section"), ("nope.x", "unknown config key 'nope'")]:
        with pytest.raises(ConfigError, match=words):
            field_type(key)


def _float_keys() -> list[str]:
    """Every float setting of the Config, as dotted keys."""
    keys = []
    for section in dataclasses.fields(Config):
        hints = typing.get_type_hints(type(getattr(Config(), section.name)))
        for name, tp in hints.items():
            if tp is float:
                keys.append(f"{section.name}.{name}")
    return keys


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", ".inf", "1e999"])
def test_every_float_setting_must_be_finite(value: str) -> None:
    keys = _float_keys()
    assert {"optim.lr", "loss.census", "loss.lpips", "data.color_jitter"} <= set(keys)
    for key in keys:
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: got .*; expected a finite number$"):
            load_config(None, [f"{key}={value}"])


def test_dict_differences_names_every_changed_leaf() -> None:
    from lift.config import dict_differences

    old = {"optim": {"lr": 3e-4, "betas": [0.9, 0.999]}, "name": "a", "gone": 1}
    new = {"optim": {"lr": 1e-3, "betas": [0.9, 0.999]}, "name": "a", "added": {"x": 2}}
    assert dict_differences(old, new) == ["added: None -> {'x': 2}", "gone: 1 -> None", "optim.lr: 0.0003 -> 0.001"]
    assert dict_differences(old, old) == []


def test_presets_resolve_by_kind() -> None:
    from lift.config import resolve_preset

    assert resolve_preset("smoke") == CONFIG_DIR / "smoke.yaml"
    assert resolve_preset("footage", "study_", "study preset") == CONFIG_DIR / "study_footage.yaml"
    with pytest.raises(ConfigError, match=r"config 'footage' is neither a file nor a preset; presets: .*smoke") as err:
        resolve_preset("footage")
    assert "study_" not in str(err.value) and "control_positive" not in str(err.value)
    with pytest.raises(ConfigError, match=r"study preset 'smoke' is neither .*presets: .*control_positive"):
        resolve_preset("smoke", "study_", "study preset")


def test_published_weights_imply_their_backbone() -> None:
    cfg = load_config(None, ["model.pretrained=rife_hd"])
    assert cfg.model.backbone == "rife_hd"
    assert load_config(None).model.backbone == "rife_m"


def test_the_published_backbone_needs_a_middle_target() -> None:
    with pytest.raises(ConfigError, match=r"data.gap: got 4; expected 2 with model.backbone rife_hd"):
        load_config(None, ["model.pretrained=rife_hd", "data.gap=4"])


def test_a_frozen_window_3_model_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=r"model.freeze_backbone: got True; expected false with data.window 3"):
        load_config(None, ["model.freeze_backbone=true", "data.window=3"])
    assert load_config(None, ["model.freeze_backbone=true", "data.window=15"]).model.freeze_backbone


def test_backbone_lr_scale_is_a_fraction() -> None:
    with pytest.raises(ConfigError, match=r"optim.backbone_lr_scale: got 2.0; expected a fraction in \[0, 1\]"):
        load_config(None, ["optim.backbone_lr_scale=2"])
