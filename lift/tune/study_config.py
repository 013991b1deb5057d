"""The study configuration: arms, search space, budgets and resources of a context ablation.

A study config is a small YAML file (``configs/study_<name>.yaml``, or any path) on top of a
LIFT training preset::

    name: default-study
    seed: 0
    lift:                      # the training config every trial starts from
      preset: default          # configs/default.yaml (a lift.config preset or path)
      overrides: {train.epochs: 3}
    arms: {windows: [3, 7], offsets: [1, 2]}   # or any factors, see below
    search:
      num_samples: 4           # Optuna trials per arm (equal budget)
      max_concurrent: 2        # trials of one arm running at once
      space:
        loss.distillation: {low: 0.001, high: 0.1, log: true}
        optim.lr: {low: 1.0e-4, high: 3.0e-3, log: true}
    asha: {grace_period: 1, reduction_factor: 2}
    confirm: {seeds: 3}        # a verdict needs >= 3 seeds per arm (seeds are random, STATISTICS.md)
    report:                    # the test family, fixed before the data are seen (lift.report reads it)
      endpoints: [psnr, ssim, lpips]   # in this order
      procedure: fixed_sequence        # or holm
      alpha: 0.05
      sesoi: {psnr: 0.1, ssim: 0.001, lpips: 0.001}   # smallest effects of interest, metric units
      treatment: window=15             # the primary comparison's arms (selectors; default: see ReportSection)
      control: window=3
      ablation_family: secondary       # or own: the ablation table's rows in their own Holm family
    resources: {cpus_per_trial: 1, gpus_per_trial: 0}
    failure: {max_failures: 2}

Dotted overrides (``--set search.num_samples=3``) address the study; a key whose first part is a
section of the LIFT config (``data``, ``model``, ``loss``, ``optim``, ``train``, ``eval``,
``logging``) is a training override and goes to ``lift.overrides``. Unknown keys are errors.

Arms: ``arms.factors`` maps any LIFT config key to its levels, and ``arms.design`` says how they
combine: ``grid`` (every combination) or ``one_at_a_time`` (the base arm, ``arms.base`` or each
factor's first level, then for each factor each other level with only that factor changed)::

    arms:
      design: one_at_a_time
      factors:
        data.window: [15]
        data.temporal_offset: [1]
        loss.lpips: [0.1, 0.0]
        model.quadratic_extrapolation: [true, false]

``arms.windows`` / ``arms.offsets`` are the shorthand for the factors ``data.window`` /
``data.temporal_offset`` (default ``[3, 7]`` and ``[1]`` when neither form names them). Arm names
and the designs live in :mod:`lift.arms`.

Budget rule (STATISTICS.md): every arm of the primary comparison gets the same tuning budget. The
treatment's offset is chosen among the offset arms of its window, which together get
``num_samples x len(offsets)`` trials; so the control (window 3) gets as many (:func:`trials_per_arm`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lift.arms import (
    OFFSET_KEY,
    WINDOW_KEY,
    Arm,
    ArmNameError,
    canonical,
    changed_factors,
    grid,
    one_at_a_time,
    split_key,
)
from lift.config import (
    STUDY_PRESET_PREFIX,
    Config,
    ConfigError,
    apply_overrides,
    coerce_value,
    field_type,
    load_config,
    merge_fields,
    nest_key,
    parse_override,
    read_yaml,
    require,
    resolve_preset,
)
from lift.report.decision import ABLATION_FAMILIES, DEFAULT_ENDPOINTS, DEFAULT_SESOI, PROCEDURES, Family
from lift.window import ignores_offset

# The study `python studies/context_ablation.py` runs with no --preset: the positive known-answer
# control (configs/study_control_positive.yaml), the study whose answer is known to be "H0 rejected".
DEFAULT_STUDY_PRESET = "control_positive"
# Sections of lift.config.Config that a study may override for every trial.
LIFT_SECTIONS = ("data", "model", "loss", "optim", "train", "eval", "logging")
# Training keys the study owns: setting them through lift.overrides would break the protocol.
STUDY_OWNED_KEYS = ("data.window", "data.temporal_offset", "data.eval_max_window", "data.eval_max_offset",
                    "train.seed", "train.val_every", "paths.run_dir")

ARM_DESIGNS = ("grid", "one_at_a_time")
# The window/offset factors when neither arms.windows/offsets nor arms.factors names them.
DEFAULT_WINDOWS = [3, 7]
DEFAULT_OFFSETS = [1]
# Sections whose fields may be arm factors: what an arm trains. eval/logging/paths settings are
# the same for every arm (they decide how arms are measured and where results go).
FACTOR_SECTIONS = ("data", "model", "loss", "optim", "train")
_SAME_SAMPLES = "it decides which samples are evaluated, and every arm is evaluated on the same sample ids"
_SAME_BUDGET = "it sets the training budget, which is the same for every arm"
# Fields of those sections that cannot be factors, and why.
NOT_FACTORS: dict[str, str] = {
    **dict.fromkeys(("data.dataset", "data.data_root", "data.gap", "data.eval_targets_per_video", "data.eval_crop",
                     "data.frame_size", "data.max_sequences", "data.segment_length", "data.val_fraction",
                     "data.test_fraction", "data.ucf_split", "data.on_bad_video"), _SAME_SAMPLES),
    **dict.fromkeys(("train.epochs", "train.max_steps_per_epoch"), _SAME_BUDGET),
    **dict.fromkeys((k for k in STUDY_OWNED_KEYS if k not in (WINDOW_KEY, OFFSET_KEY)),
                    "the study sets it for every arm and trial"),
}


class StudyError(ValueError):
    """The study cannot run as configured; the message names the setting and what is expected."""


@dataclass
class SearchParam:
    """A continuous search range for one numeric field of the LIFT config."""
    low: float
    high: float
    log: bool = False


@dataclass
class LiftSection:
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class ArmsSection:
    # Shorthand for the factors data.window / data.temporal_offset; None: not given.
    windows: list[int] | None = None
    offsets: list[int] | None = None
    # Any LIFT config key -> its levels, e.g. {"loss.lpips": [0.1, 0.0]}.
    factors: dict[str, list[Any]] = field(default_factory=dict)
    design: str = "grid"
    # The base arm's values (default: each factor's first level): one_at_a_time changes one
    # factor at a time from it; every arm records the factors in which it differs from it.
    base: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchSection:
    num_samples: int = 4
    max_concurrent: int = 2
    space: dict[str, SearchParam] = field(default_factory=lambda: {
        "loss.distillation": SearchParam(1e-3, 1e-1, log=True),
        "loss.lpips": SearchParam(0.0, 0.2),
        "loss.census": SearchParam(0.0, 0.2),
        "loss.smoothness": SearchParam(0.0, 0.05),
        "optim.lr": SearchParam(1e-4, 3e-3, log=True),
    })


@dataclass
class AshaSection:
    grace_period: int = 1
    reduction_factor: int = 2


@dataclass
class ConfirmSection:
    seeds: int = 3


@dataclass
class ReportSection:
    """The test family of the report (lift.report.decision.Family), fixed in the study config."""
    endpoints: list[str] = field(default_factory=lambda: list(DEFAULT_ENDPOINTS))
    procedure: str = "fixed_sequence"
    alpha: float = 0.05
    sesoi: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SESOI))
    # The primary comparison as arm selectors (key=value pairs an arm's name must contain, e.g.
    # "window=15"). None: the PICO's window 15 (the largest window) against window 3; in a
    # one_at_a_time study whose base arm has a window above 3 (15 in the presets), the base arm
    # against its window-3 change.
    treatment: str | None = None
    control: str | None = None
    # The ablation table's comparisons (each factor change against the base arm): in the gatekept
    # secondary family ("secondary", STATISTICS.md) or in their own Holm family ("own").
    ablation_family: str = "secondary"

    def family(self) -> Family:
        return Family.from_dict({"endpoints": self.endpoints, "procedure": self.procedure, "alpha": self.alpha,
                                 "sesoi": self.sesoi})


@dataclass
class ResourcesSection:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0


@dataclass
class FailureSection:
    # Restarts of a trial whose worker died (from its last checkpoint) before it counts as failed.
    max_failures: int = 2


@dataclass
class StudyConfig:
    name: str = "context-ablation"
    seed: int = 0
    lift: LiftSection = field(default_factory=LiftSection)
    arms: ArmsSection = field(default_factory=ArmsSection)
    search: SearchSection = field(default_factory=SearchSection)
    asha: AshaSection = field(default_factory=AshaSection)
    confirm: ConfirmSection = field(default_factory=ConfirmSection)
    report: ReportSection = field(default_factory=ReportSection)
    resources: ResourcesSection = field(default_factory=ResourcesSection)
    failure: FailureSection = field(default_factory=FailureSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What defines the study's results: everything but where and how trials are placed."""
        d = self.to_dict()
        d.pop("resources")
        return d


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _as_study_error(prefix: str = "") -> Iterator[None]:
    """A ConfigError or ArmNameError raised inside becomes a StudyError, `prefix` before its message."""
    try:
        yield
    except (ConfigError, ArmNameError) as err:
        raise StudyError(f"{prefix}{err}") from None


def _scalar(value: Any, tp: type, key: str) -> Any:
    """The training config's coercion (same rules, same messages), raising StudyError."""
    with _as_study_error():
        return coerce_value(value, tp, key)


def _int_list(value: Any, key: str) -> list[int]:
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [v for v in str(value).split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise StudyError(f"{key}: got {value!r}; expected a non-empty list of integers")
    return [_scalar(v, int, f"{key}[{i}]") for i, v in enumerate(value)]


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StudyError(f"{key}: got {value!r}; expected a mapping")
    return value


def _set_field(obj: Any, name: str, value: Any, key: str) -> None:
    """One study field (lift.config.merge_fields walks the sections)."""
    current = getattr(obj, name)
    if isinstance(obj, ArmsSection):
        _merge_arms(obj, name, value, key)
    elif name == "overrides":
        current.update({str(k): v for k, v in _mapping(value, key).items()})
    elif name == "sesoi":
        current.update({str(k): _scalar(v, float, f"{key}.{k}") for k, v in _mapping(value, key).items()})
    elif name == "endpoints":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not value:
            raise StudyError(f"{key}: got {value!r}; expected a non-empty list of metric names")
        setattr(obj, name, [str(v) for v in value])
    elif name == "space":
        _merge_space(current, _mapping(value, key), key)
    elif isinstance(current, list):
        setattr(obj, name, _int_list(value, key))
    elif name in ("treatment", "control"):  # an arm selector; null: the default comparison
        setattr(obj, name, None if value is None else _scalar(value, str, key))
    else:
        tp = {"name": str, "preset": str, "procedure": str, "ablation_family": str}.get(name) or type(current)
        setattr(obj, name, _scalar(value, tp, key))


def _merge_space(space: dict[str, SearchParam], values: dict[str, Any], key: str) -> None:
    for pname, spec in values.items():
        if spec is None:  # `loss.lpips: null` removes a parameter from the search
            space.pop(pname, None)
            continue
        spec = _mapping(spec, f"{key}.{pname}")
        unknown = set(spec) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(spec):
            raise StudyError(f"{key}.{pname}: got {spec!r}; expected {{low: number, high: number, log: bool}}")
        space[pname] = SearchParam(_scalar(spec["low"], float, f"{key}.{pname}.low"),
                                   _scalar(spec["high"], float, f"{key}.{pname}.high"),
                                   _scalar(spec.get("log", False), bool, f"{key}.{pname}.log"))


_merge_section = functools.partial(merge_fields, set_field=_set_field, kind="study", error=StudyError)


def _merge_arms(arms: ArmsSection, name: str, value: Any, key: str) -> None:
    """One field of the arms section; levels and base values are typed later, against the LIFT
    config (validate_study_config), since their types are the config fields'."""
    if name in ("windows", "offsets"):
        setattr(arms, name, None if value is None else _int_list(value, key))
    elif name == "design":
        arms.design = _scalar(value, str, key)
    else:  # factors, base: dotted LIFT keys; `key: null` removes one
        current = getattr(arms, name)
        for item, v in _mapping(value, key).items():
            item = str(item)
            if v is None:
                current.pop(item, None)
            elif name == "base":
                current[item] = v
            elif isinstance(v, (list, tuple)) and v:
                current[item] = list(v)
            else:
                raise StudyError(f"{key}.{item}: got {v!r}; expected a non-empty list of levels "
                                 f"(with the key dotted, e.g. {key}.loss.lpips: [0.1, 0.0])")


def study_from_dict(values: dict[str, Any], base: StudyConfig | None = None) -> StudyConfig:
    cfg = copy.deepcopy(base) if base is not None else StudyConfig()
    _merge_section(cfg, values, "")
    return cfg


def apply_study_overrides(cfg: StudyConfig, overrides: list[str]) -> StudyConfig:
    """`search.num_samples=3` sets a study key; `train.epochs=2` (a LIFT section) a training one."""
    out = copy.deepcopy(cfg)
    for text in overrides:
        with _as_study_error():
            key, value = parse_override(text)
        if key.split(".", 1)[0] in LIFT_SECTIONS:
            out.lift.overrides[key] = value
        elif key.startswith("search.space."):  # parameter names are dotted LIFT keys themselves
            _merge_section(out, {"search": {"space": {key.removeprefix("search.space."): value}}}, "")
        elif key.startswith(("arms.factors.", "arms.base.")):  # so are arm factors
            section, item = key.removeprefix("arms.").split(".", 1)
            _merge_section(out, {"arms": {section: {item: value}}}, "")
        else:
            _merge_section(out, nest_key(key, value), "")
    return out


def load_study_config(preset: str | Path | None = DEFAULT_STUDY_PRESET,
                      overrides: list[str] | None = None) -> StudyConfig:
    """Defaults <- study preset file <- dotted overrides; validated (StudyError otherwise)."""
    cfg = StudyConfig()
    if preset is not None:
        with _as_study_error():  # `footage` -> configs/study_footage.yaml, or a file path
            path = resolve_preset(preset, STUDY_PRESET_PREFIX, "study preset")
            data = read_yaml(path)
        try:
            cfg = study_from_dict(data, cfg)
        except StudyError as err:
            raise StudyError(f"study config {path}: {err}") from None
    if overrides:
        cfg = apply_study_overrides(cfg, overrides)
    validate_study_config(cfg)
    return cfg


def study_to_yaml(cfg: StudyConfig) -> str:
    """The study as YAML that `study_from_dict` reads back to the same study: a default search
    parameter the study removed is written as null (removed again), not left out (back by default)."""
    data = cfg.to_dict()
    for name in SearchSection().space:
        data["search"]["space"].setdefault(name, None)
    return yaml.safe_dump(data, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Validation and derived objects
# ---------------------------------------------------------------------------------------------

_require = functools.partial(require, error=StudyError)


def validate_study_config(cfg: StudyConfig) -> StudyConfig:
    _require(bool(cfg.name) and "/" not in cfg.name, "name", cfg.name, "expected a non-empty name without '/'")
    _require(cfg.search.num_samples >= 1, "search.num_samples", cfg.search.num_samples, "expected >= 1")
    _require(cfg.search.max_concurrent >= 1, "search.max_concurrent", cfg.search.max_concurrent, "expected >= 1")
    _require(bool(cfg.search.space), "search.space", cfg.search.space, "expected at least one parameter to tune")
    for name, p in cfg.search.space.items():
        key = f"search.space.{name}"
        _require(name.split(".", 1)[0] in ("loss", "optim") and "." in name, key, name,
                 "expected a LIFT loss.* or optim.* field")
        _require(math.isfinite(p.low) and math.isfinite(p.high) and p.low < p.high, key,
                 {"low": p.low, "high": p.high}, "expected finite low < high")
        if p.log:
            _require(p.low > 0, key, {"low": p.low, "log": True}, "expected low > 0 for a log-scale range")
    _require(cfg.asha.grace_period >= 1, "asha.grace_period", cfg.asha.grace_period, "expected >= 1 (epochs)")
    _require(cfg.asha.reduction_factor >= 2, "asha.reduction_factor", cfg.asha.reduction_factor, "expected >= 2")
    _require(cfg.confirm.seeds >= 1, "confirm.seeds", cfg.confirm.seeds,
             "expected >= 1 (a verdict needs >= 3; fewer only with --allow-underpowered)")
    rep = cfg.report
    _require(rep.procedure in PROCEDURES, "report.procedure", rep.procedure, f"expected one of {', '.join(PROCEDURES)}")
    _require(0 < rep.alpha < 1, "report.alpha", rep.alpha, "expected a level in (0, 1)")
    known = ("psnr", "ssim", "lpips")
    _require(all(e in known for e in rep.endpoints) and len(set(rep.endpoints)) == len(rep.endpoints),
             "report.endpoints", rep.endpoints, f"expected distinct metrics among {', '.join(known)}")
    for metric, value in rep.sesoi.items():
        _require(metric in known and value >= 0, f"report.sesoi.{metric}", value,
                 f"expected a non-negative effect for one of {', '.join(known)}")
    _require(rep.ablation_family in ABLATION_FAMILIES, "report.ablation_family", rep.ablation_family,
             f"expected one of {', '.join(ABLATION_FAMILIES)}")
    for name in ("treatment", "control"):
        selector = getattr(rep, name)
        if selector is not None:
            with _as_study_error(f"report.{name}: "):
                split_key(selector)
    r = cfg.resources
    _require(r.cpus_per_trial > 0, "resources.cpus_per_trial", r.cpus_per_trial, "expected > 0")
    _require(r.gpus_per_trial >= 0, "resources.gpus_per_trial", r.gpus_per_trial, "expected >= 0")
    _require(r.gpus_per_trial <= 1 or float(r.gpus_per_trial).is_integer(), "resources.gpus_per_trial",
             r.gpus_per_trial, "expected a fraction <= 1 (several trials share a GPU) or a whole number")
    _require(cfg.failure.max_failures >= 0, "failure.max_failures", cfg.failure.max_failures, "expected >= 0")
    for key in cfg.lift.overrides:
        _require(not key.startswith(STUDY_OWNED_KEYS), f"lift.overrides.{key}", cfg.lift.overrides[key],
                 "this field is set by the study for each arm/trial; use arms.*, seed or the study folder instead")
    base = base_train_config(cfg)
    _validate_arms(cfg, base)
    _require(cfg.asha.grace_period <= base.train.epochs, "asha.grace_period", cfg.asha.grace_period,
             f"expected <= train.epochs ({base.train.epochs})")
    for name, p in cfg.search.space.items():
        for bound in (p.low, p.high):
            with _as_study_error(f"search.space.{name}: the bound {bound!r} is not a valid training value: "):
                apply_overrides(base, {name: bound})
    return cfg


def base_train_config(cfg: StudyConfig) -> Config:
    """The LIFT preset with the study's training overrides, before any arm or search value."""
    with _as_study_error(f"lift (preset {cfg.lift.preset!r}, overrides {cfg.lift.overrides}): "):
        return load_config(cfg.lift.preset, dict(cfg.lift.overrides))


def _factor_where(cfg: StudyConfig, key: str) -> str:
    """Where the study config states a factor, for messages."""
    if key not in cfg.arms.factors:
        if key == WINDOW_KEY:
            return "arms.windows"
        if key == OFFSET_KEY:
            return "arms.offsets"
    return f"arms.factors.{key}"


def _raw_factors(cfg: StudyConfig) -> dict[str, list[Any]]:
    """arms.factors with the window/offset shorthand (or its defaults) filled in."""
    factors = dict(cfg.arms.factors)
    for key, short, default in ((WINDOW_KEY, "windows", DEFAULT_WINDOWS), (OFFSET_KEY, "offsets", DEFAULT_OFFSETS)):
        given = getattr(cfg.arms, short)
        if given is not None and key in factors:
            raise StudyError(f"arms.{short} and arms.factors.{key}: both given; arms.{short} is the shorthand "
                             f"for the factor {key}: keep one")
        factors.setdefault(key, list(given if given is not None else default))
    return factors


def _typed(key: str, value: Any, where: str) -> Any:
    """A level or base value as the config field's type; StudyError naming `where` otherwise."""
    with _as_study_error():
        return coerce_value(value, field_type(key), where)


def arm_factors(cfg: StudyConfig) -> dict[str, list[Any]]:
    """Every factor of the study (arms.factors plus the window/offset shorthand) with its levels
    typed as the LIFT config field; window and offset levels sorted (arm order as always)."""
    out = {}
    for key, levels in _raw_factors(cfg).items():
        where = _factor_where(cfg, key)
        typed = [_typed(key, v, f"{where}[{i}]") for i, v in enumerate(levels)]
        out[key] = sorted(typed) if key in (WINDOW_KEY, OFFSET_KEY) else typed
    return out


def _base_values(cfg: StudyConfig) -> dict[str, Any]:
    return {key: _typed(key, cfg.arms.base.get(key, levels[0]),
                        f"arms.base.{key}" if key in cfg.arms.base else f"{_factor_where(cfg, key)}[0]")
            for key, levels in _raw_factors(cfg).items()}


def arms_of(cfg: StudyConfig) -> list[Arm]:
    """The study's arms by arms.design (lift.arms.grid / one_at_a_time); window-3 arms that differ
    only in the offset are one arm (it has no references, so its offset means nothing)."""
    # The base arm: arms.base where given, else each factor's first level as written.
    factors, base = arm_factors(cfg), canonical(_base_values(cfg))
    if cfg.arms.design == "one_at_a_time":
        values = one_at_a_time(factors, base)
    else:
        values = grid(factors)
    named = tuple(k for k in factors if k in (WINDOW_KEY, OFFSET_KEY) or len(factors[k]) > 1)
    return [Arm(i, tuple(v.items()), named, tuple(changed_factors(v, base))) for i, v in enumerate(values)]


def _validate_arms(cfg: StudyConfig, base: Config) -> None:
    """Every factor a trainable LIFT field with valid, distinct levels of its type, neither tuned
    nor overridden; a base arm made of its levels; distinct arm names."""
    _require(cfg.arms.design in ARM_DESIGNS, "arms.design", cfg.arms.design,
             f"expected one of {', '.join(ARM_DESIGNS)}")
    raw = _raw_factors(cfg)
    for key, levels in raw.items():
        where = _factor_where(cfg, key)
        if key.split(".", 1)[0] not in FACTOR_SECTIONS or "." not in key:
            raise StudyError(f"{where}: expected a {', '.join(s + '.<field>' for s in FACTOR_SECTIONS)} key, what an "
                             "arm trains (eval, logging and paths settings are the same for every arm)")
        with _as_study_error(f"{where}: "):
            tp = field_type(key)
        if key in NOT_FACTORS:
            raise StudyError(f"{where}: {key} cannot be an arm factor: {NOT_FACTORS[key]}")
        if key in cfg.search.space:
            raise StudyError(f"{where}: {key} is also in search.space; a key is either an arm factor or tuned, "
                             f"not both (remove search.space.{key} or the factor)")
        if key in cfg.lift.overrides:
            raise StudyError(f"{where}: {key} is also in lift.overrides; the factor sets it for each arm "
                             f"(remove lift.overrides.{key})")
        if typing.get_origin(tp) is list:
            raise StudyError(f"{where}: {key} holds a list; a list-valued field cannot be a factor (an arm name "
                             "holds one value per key)")
        typed = [_typed(key, v, f"{where}[{i}]") for i, v in enumerate(levels)]
        for i, level in enumerate(typed):
            try:
                apply_overrides(base, {key: level})
            except ConfigError as err:
                raise StudyError(f"{where}[{i}]: {str(err).removeprefix(f'{key}: ')}") from None
        _require(len({repr(v) for v in typed}) == len(typed), where, levels, "expected each level once")
    for key in cfg.arms.base:
        _require(key in raw, f"arms.base.{key}", cfg.arms.base[key],
                 f"expected a factor of the study ({', '.join(raw)})")
    base_values = _base_values(cfg)
    for key, levels in arm_factors(cfg).items():
        _require(base_values[key] in levels, f"arms.base.{key}", base_values[key],
                 f"expected one of its levels {levels}")
    with _as_study_error("arms: "):
        arms = arms_of(cfg)
        slugs = [a.slug for a in arms]
    _require(len(arms) >= 1, "arms", cfg.arms, "expected at least one arm")
    _require(len(set(slugs)) == len(slugs), "arms", [a.key for a in arms],
             "expected arm names that stay distinct as folder names (lift.arms.arm_slug)")


def eval_extent(cfg: StudyConfig) -> tuple[int, int]:
    """The largest window and offset of the study: every arm's evaluation targets fit both."""
    arms = arms_of(cfg)
    return max(a.window for a in arms), max(a.temporal_offset for a in arms)


def arm_train_config(cfg: StudyConfig, arm: Arm, params: dict[str, Any] | None = None, *,
                     seed: int | None = None) -> Config:
    """The training config of one trial of `arm` (with search values `params` applied)."""
    max_w, max_s = eval_extent(cfg)
    values: dict[str, Any] = {
        **arm.factors,  # data.window, data.temporal_offset and every other factor
        "data.eval_max_window": max_w,
        "data.eval_max_offset": max_s,
        # ASHA's time attribute is the report count: one report per epoch keeps it in epochs.
        "train.val_every": 1,
        # Ray keeps the trial's checkpoints; periodic snapshots would only be copied along.
        "train.snapshot_every": 0,
        "train.seed": cfg.seed if seed is None else seed,
        "name": f"{cfg.name}-{arm.slug}",
    }
    values.update(params or {})
    with _as_study_error(f"arm {arm.key}: "):
        return apply_overrides(base_train_config(cfg), values)


def trials_per_arm(cfg: StudyConfig) -> dict[str, int]:
    """Tuning trials per arm under the budget rule: each arm ``num_samples``, except the control
    (window 3), which gets as many as all offset arms of one window together, since the treatment's
    offset is the best of those."""
    arms = arms_of(cfg)
    n_offsets = max(1, len({a.temporal_offset for a in arms if not ignores_offset(a.window)}))
    return {a.key: cfg.search.num_samples * (n_offsets if ignores_offset(a.window) else 1) for a in arms}


def confirm_seeds(cfg: StudyConfig) -> list[int]:
    """Seeds of the confirm stage: distinct from the tuning seed, so each is a fresh replicate."""
    return [cfg.seed + 1000 + i for i in range(cfg.confirm.seeds)]
