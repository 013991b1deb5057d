"""The study configuration: arms, search space, budgets and resources of a context ablation.

A study config is a small YAML file (``configs/study_<name>.yaml``, or any path) on top of a
LIFT training preset::

    name: default-study
    seed: 0
    lift:                      # the training config every trial starts from
      preset: default          # configs/default.yaml (a lift.config preset or path)
      overrides: {train.epochs: 3}
    arms: {windows: [3, 7], offsets: [1, 2]}
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
    resources: {cpus_per_trial: 1, gpus_per_trial: 0}
    failure: {max_failures: 2}

Dotted overrides (``--set search.num_samples=3``) address the study; a key whose first part is a
section of the LIFT config (``data``, ``model``, ``loss``, ``optim``, ``train``, ``eval``,
``logging``) is a training override and goes to ``lift.overrides``. Unknown keys are errors.

Budget rule (STATISTICS.md): every arm of the primary comparison gets the same tuning budget. The
treatment's offset is chosen among the offset arms of its window, which together get
``num_samples x len(offsets)`` trials; so the control (window 3) gets as many (:func:`trials_per_arm`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lift.config import (
    CONFIG_DIR,
    Config,
    ConfigError,
    apply_overrides,
    coerce_value,
    load_config,
    nest_key,
    parse_override,
    read_yaml,
)
from lift.report.decision import DEFAULT_ENDPOINTS, DEFAULT_SESOI, PROCEDURES, Family

# Sections of lift.config.Config that a study may override for every trial.
LIFT_SECTIONS = ("data", "model", "loss", "optim", "train", "eval", "logging")
# Training keys the study owns: setting them through lift.overrides would break the protocol.
STUDY_OWNED_KEYS = ("data.window", "data.temporal_offset", "data.eval_max_window", "data.eval_max_offset",
                    "train.seed", "train.val_every", "paths.run_dir")


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
    windows: list[int] = field(default_factory=lambda: [3, 7])
    offsets: list[int] = field(default_factory=lambda: [1])


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


@dataclass(frozen=True)
class Arm:
    """One ablation arm: a window and (for window > 3) a temporal offset."""
    index: int
    window: int
    temporal_offset: int

    @property
    def key(self) -> str:
        from lift.evaluate import arm_key

        return arm_key(self.window, self.temporal_offset)

    @property
    def slug(self) -> str:
        """File-system and Ray-experiment-name friendly form of the key."""
        return f"w{self.window}" if self.window == 3 else f"w{self.window}_o{self.temporal_offset}"


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def _scalar(value: Any, tp: type, key: str) -> Any:
    """The training config's coercion (same rules, same messages), raising StudyError."""
    try:
        return coerce_value(value, tp, key)
    except ConfigError as err:
        raise StudyError(str(err)) from None


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


def _merge_section(obj: Any, values: dict[str, Any], prefix: str) -> None:
    values = _mapping(values, prefix.rstrip(".") or "study config")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            raise StudyError(f"unknown study key {key!r}; known keys here: {', '.join(sorted(fields))}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            _merge_section(current, value, f"{key}.")
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
            for pname, spec in _mapping(value, key).items():
                if spec is None:  # `loss.lpips: null` removes a parameter from the search
                    current.pop(pname, None)
                    continue
                spec = _mapping(spec, f"{key}.{pname}")
                unknown = set(spec) - {"low", "high", "log"}
                if unknown or not {"low", "high"} <= set(spec):
                    raise StudyError(f"{key}.{pname}: got {spec!r}; expected {{low: number, high: number, log: bool}}")
                current[pname] = SearchParam(_scalar(spec["low"], float, f"{key}.{pname}.low"),
                                             _scalar(spec["high"], float, f"{key}.{pname}.high"),
                                             _scalar(spec.get("log", False), bool, f"{key}.{pname}.log"))
        elif isinstance(current, list):
            setattr(obj, name, _int_list(value, key))
        else:
            tp = {"name": str, "preset": str, "procedure": str}.get(name) or type(current)
            setattr(obj, name, _scalar(value, tp, key))


def resolve_study_preset(name_or_path: str | Path) -> Path:
    """`default` -> configs/study_default.yaml; an existing file path is used as is."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    preset = CONFIG_DIR / f"study_{name_or_path}.yaml"
    if preset.is_file():
        return preset
    known = ", ".join(sorted(p.stem.removeprefix("study_") for p in CONFIG_DIR.glob("study_*.yaml")))
    raise StudyError(f"study preset {str(name_or_path)!r} is neither a file nor a preset; presets: {known}")


def study_from_dict(values: dict[str, Any], base: StudyConfig | None = None) -> StudyConfig:
    cfg = copy.deepcopy(base) if base is not None else StudyConfig()
    _merge_section(cfg, values, "")
    return cfg


def apply_study_overrides(cfg: StudyConfig, overrides: list[str]) -> StudyConfig:
    """`search.num_samples=3` sets a study key; `train.epochs=2` (a LIFT section) a training one."""
    out = copy.deepcopy(cfg)
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as err:
            raise StudyError(str(err)) from None
        if key.split(".", 1)[0] in LIFT_SECTIONS:
            out.lift.overrides[key] = value
            continue
        if key.startswith("search.space."):  # parameter names are dotted LIFT keys themselves
            _merge_section(out, {"search": {"space": {key.removeprefix("search.space."): value}}}, "")
            continue
        _merge_section(out, nest_key(key, value), "")
    return out


def load_study_config(preset: str | Path | None = "default", overrides: list[str] | None = None) -> StudyConfig:
    """Defaults <- study preset file <- dotted overrides; validated (StudyError otherwise)."""
    cfg = StudyConfig()
    if preset is not None:
        path = resolve_study_preset(preset)
        try:
            data = read_yaml(path)
        except ConfigError as err:
            raise StudyError(str(err)) from None
        try:
            cfg = study_from_dict(data, cfg)
        except StudyError as err:
            raise StudyError(f"study config {path}: {err}") from None
    if overrides:
        cfg = apply_study_overrides(cfg, overrides)
    validate_study_config(cfg)
    return cfg


def study_to_yaml(cfg: StudyConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Validation and derived objects
# ---------------------------------------------------------------------------------------------

def _require(cond: bool, key: str, value: Any, expected: str) -> None:
    if not cond:
        raise StudyError(f"{key}: got {value!r}; {expected}")


def validate_study_config(cfg: StudyConfig) -> StudyConfig:
    _require(bool(cfg.name) and "/" not in cfg.name, "name", cfg.name, "expected a non-empty name without '/'")
    for w in cfg.arms.windows:
        _require(w >= 3 and w % 2 == 1, "arms.windows", cfg.arms.windows,
                 "expected odd integers >= 3 (3 = the RIFE triplet control arm)")
    _require(len(set(cfg.arms.windows)) == len(cfg.arms.windows), "arms.windows", cfg.arms.windows,
             "expected each window once")
    for s in cfg.arms.offsets:
        _require(s >= 1, "arms.offsets", cfg.arms.offsets, "expected integers >= 1")
    _require(len(set(cfg.arms.offsets)) == len(cfg.arms.offsets), "arms.offsets", cfg.arms.offsets,
             "expected each offset once")
    _require(len(arms_of(cfg)) >= 1, "arms", cfg.arms, "expected at least one arm")
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
    _require(cfg.asha.grace_period <= base.train.epochs, "asha.grace_period", cfg.asha.grace_period,
             f"expected <= train.epochs ({base.train.epochs})")
    for name, p in cfg.search.space.items():
        for bound in (p.low, p.high):
            try:
                apply_overrides(base, {name: bound})
            except ConfigError as err:
                raise StudyError(f"search.space.{name}: the bound {bound!r} is not a valid training value: {err}") from None
    return cfg


def base_train_config(cfg: StudyConfig) -> Config:
    """The LIFT preset with the study's training overrides, before any arm or search value."""
    try:
        return load_config(cfg.lift.preset, dict(cfg.lift.overrides))
    except ConfigError as err:
        raise StudyError(f"lift (preset {cfg.lift.preset!r}, overrides {cfg.lift.overrides}): {err}") from None


def arms_of(cfg: StudyConfig) -> list[Arm]:
    """window x offset, with window 3 once: it has no references, so its offset means nothing."""
    pairs: list[tuple[int, int]] = []
    for w in sorted(cfg.arms.windows):
        if w == 3:
            pairs.append((3, 1))
        else:
            pairs.extend((w, s) for s in sorted(cfg.arms.offsets))
    return [Arm(i, w, s) for i, (w, s) in enumerate(pairs)]


def eval_extent(cfg: StudyConfig) -> tuple[int, int]:
    """The largest window and offset of the study: every arm's evaluation targets fit both."""
    arms = arms_of(cfg)
    return max(a.window for a in arms), max(a.temporal_offset for a in arms)


def arm_train_config(cfg: StudyConfig, arm: Arm, params: dict[str, Any] | None = None, *,
                     seed: int | None = None) -> Config:
    """The training config of one trial of `arm` (with search values `params` applied)."""
    max_w, max_s = eval_extent(cfg)
    values: dict[str, Any] = {
        "data.window": arm.window,
        "data.temporal_offset": arm.temporal_offset,
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
    try:
        return apply_overrides(base_train_config(cfg), values)
    except ConfigError as err:
        raise StudyError(f"arm {arm.key}: {err}") from None


def trials_per_arm(cfg: StudyConfig) -> dict[str, int]:
    """Tuning trials per arm under the budget rule: each arm ``num_samples``, except the control
    (window 3), which gets as many as all offset arms of one window together, since the treatment's
    offset is the best of those."""
    n_offsets = len(cfg.arms.offsets) if any(w > 3 for w in cfg.arms.windows) else 1
    return {a.key: cfg.search.num_samples * (n_offsets if a.window == 3 else 1) for a in arms_of(cfg)}


def confirm_seeds(cfg: StudyConfig) -> list[int]:
    """Seeds of the confirm stage: distinct from the tuning seed, so each is a fresh replicate."""
    return [cfg.seed + 1000 + i for i in range(cfg.confirm.seeds)]
