"""Stage 1 of the study: validate everything before any trial starts (configs, models, data,
design, cluster; the protocol is in :mod:`lift.tune.study`)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch

from lift.config import Config, ConfigError
from lift.data import build_dataset
from lift.report import decision
from lift.train import build_components, check_registries
from lift.tune.ray_setup import Capacity, check_trial_resources
from lift.tune.study_config import Arm, StudyConfig, StudyError, arm_train_config, arms_of, validate_study_config
from lift.window import WindowError


@dataclass
class Design:
    """What the report can conclude, known before any trial: STATISTICS.md's "cannot reject by design"."""
    sources: dict[str, list[str]]  # split -> its independent sources (cluster ids)
    n_test_clusters: int
    seeds: int
    min_achievable_p: float
    clusters_needed: int
    alpha: float
    procedure: str
    underpowered: list[str]  # why no verdict is possible (empty: a verdict is possible)

    def describe(self) -> str:
        n_all = len({c for v in self.sources.values() for c in v})
        return (f"design: {self.n_test_clusters} independent source(s) in the test split ({n_all} in all), "
                f"{self.seeds} confirm seed(s) per arm; smallest achievable p {self.min_achievable_p:.3g} at "
                f"alpha {self.alpha:g} ({self.procedure}); {self.clusters_needed} test sources and "
                f"{decision.MIN_SEEDS} seeds are needed for a verdict")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ValidatedStudy:
    config: StudyConfig
    arms: list[Arm]
    train_configs: dict[str, Config]  # arm key -> config before search values
    epochs: int
    capacity: Capacity | None = None
    seconds: float = 0.0  # time validate_study took
    design: Design | None = None


def check_design(cfg: StudyConfig, sources: dict[str, list[str]], *, allow_underpowered: bool = False) -> Design:
    """Can the report reject H0 at all with these test sources, seeds and family? StudyError if not,
    naming the sources and what is needed, unless ``allow_underpowered`` (the verdict will then say why)."""
    family = cfg.report.family()
    n = len(sources.get("test", []))
    floor = decision.min_achievable_p(n, family.procedure, len(family.endpoints))
    need = decision.clusters_needed(family.alpha, family.procedure, len(family.endpoints))
    why = []
    if floor >= family.alpha:
        everything = sorted({c for v in sources.values() for c in v})
        why.append(f"cannot reject by design: the test split has {n} independent source(s) "
                   f"({', '.join(sources.get('test', [])) or 'none'}; {len(everything)} in all: {', '.join(everything)}), "
                   f"so the smallest achievable p is {floor:.3g}, not below alpha={family.alpha:g} "
                   f"({family.procedure} over {', '.join(family.endpoints)}); {need} test sources are needed")
    if cfg.confirm.seeds < decision.MIN_SEEDS:
        why.append(f"confirm.seeds={cfg.confirm.seeds}: a verdict needs at least {decision.MIN_SEEDS} seeds per arm "
                   f"(the report will say 'inconclusive')")
    design = Design(sources, n, cfg.confirm.seeds, floor, need, family.alpha, family.procedure, why)
    if why and not allow_underpowered:
        fix = "use more data" if floor >= family.alpha else f"--set confirm.seeds={decision.MIN_SEEDS}"
        raise StudyError("; ".join(why) + f". Either {fix}, or pass --allow-underpowered to run it as a demonstration "
                         "whose report cannot decide H0")
    return design


def validate_study(cfg: StudyConfig, *, check_data: bool = True, allow_underpowered: bool = False) -> ValidatedStudy:
    """Configs, models, data and design of every arm; StudyError naming the problem otherwise."""
    t0 = time.perf_counter()
    validate_study_config(cfg)

    arms = arms_of(cfg)
    configs: dict[str, Config] = {}
    for arm in arms:
        tcfg = arm_train_config(cfg, arm)
        try:
            check_registries(tcfg)
            build_components(tcfg, torch.device("cpu"))
        except (ConfigError, ValueError) as err:
            raise StudyError(f"arm {arm.key}: {err}") from None
        configs[arm.key] = tcfg
    epochs = {c.train.epochs for c in configs.values()}
    assert len(epochs) == 1, epochs
    design = None
    if check_data:
        sources = validate_data(cfg, arms, configs)
        design = check_design(cfg, sources, allow_underpowered=allow_underpowered)
    return ValidatedStudy(cfg, arms, configs, epochs.pop(), seconds=time.perf_counter() - t0, design=design)


def validate_data(cfg: StudyConfig, arms: list[Arm], configs: dict[str, Config]) -> dict[str, list[str]]:
    """The arm with the longest span must fit the training sequences, and the study's largest
    window/offset the evaluation ones; then every arm fits (a shorter span fits wherever a longer
    one does). Returns each split's independent sources (cluster ids)."""
    widest = max(arms, key=lambda a: (a.window, a.temporal_offset))
    dcfg = configs[widest.key].data
    sources: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        try:
            ds = build_dataset(dcfg, split, train=split == "train", seed=cfg.seed)
        except (WindowError, ValueError, FileNotFoundError, OSError) as err:
            raise StudyError(
                f"arm {widest.key} (the study's widest, window {widest.window} with temporal offset "
                f"{widest.temporal_offset}; evaluation fixed for window {dcfg.eval_max_window}, offset "
                f"{dcfg.eval_max_offset}) cannot use the {split} split of dataset {dcfg.dataset!r} "
                f"(data_root {dcfg.data_root!r}): {err}") from None
        if len(ds) == 0:
            raise StudyError(f"the {split} split of dataset {dcfg.dataset!r} (data_root {dcfg.data_root!r}) has no "
                             f"samples for arm {widest.key}")
        sources[split] = sorted({seq.cluster_id for seq in ds.sequences})
    return sources


def check_cluster(cfg: StudyConfig) -> Capacity:
    return check_trial_resources(cfg.resources.cpus_per_trial, cfg.resources.gpus_per_trial)
