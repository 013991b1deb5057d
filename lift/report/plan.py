"""Which arms the report compares, in which family (the rules: :mod:`lift.report.analysis`), and the
options that steer it: the primary treatment and control, the secondary controls, the ablation steps."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

from lift.arms import WINDOW_KEY, changed_factors
from lift.report import decision
from lift.report.tables import ReportError, Study, arm_matches, arm_window, is_baseline

DISPLAY = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "epe": "EPE", "epe_gt1": "EPE>1px",
           "epe_gt3": "EPE>3px", "warp_error": "warp error"}
UNITS = {"psnr": "dB"}
DEFAULT_CONTROL = "window=3"


def display(metric: str) -> str:
    return DISPLAY.get(metric, metric)


@dataclass
class ReportOptions:
    alpha: float | None = None  # None: the study's family (default 0.05)
    procedure: str | None = None  # None: the study's family (default fixed_sequence)
    treatments: list[str] | None = None
    controls: list[str] | None = None
    ablation_family: str | None = None  # None: the study config's report.ablation_family (default secondary)
    n_permutations: int = 10_000
    level: float = 0.95
    seed: int = 0

    def validate(self) -> None:
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise ReportError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.procedure is not None and self.procedure not in decision.PROCEDURES:
            raise ReportError(f"--procedure {self.procedure!r}: expected one of {', '.join(decision.PROCEDURES)}")
        if self.ablation_family is not None and self.ablation_family not in decision.ABLATION_FAMILIES:
            raise ReportError(f"--ablation-family {self.ablation_family!r}: expected one of "
                              f"{', '.join(decision.ABLATION_FAMILIES)}")
        if self.n_permutations < 100:
            raise ReportError(f"--n_permutations must be at least 100, got {self.n_permutations}")


@dataclass(frozen=True)
class Comparison:
    treatment: str
    control: str
    family: str  # "primary", "secondary", "ablation" (the ablation table's own Holm family), "sanity" or "published"

    @property
    def primary(self) -> bool:
        return self.family == "primary"

    @property
    def label(self) -> str:
        return f"{self.treatment} vs {self.control}"


def validation_scores(study: Study) -> dict[str, float]:
    """Best validation PSNR per arm: from the tuning summary's trials, else from val rows (mean per trial)."""
    scores: dict[str, float] = {}
    for arm, info in study.summary.get("arm_info", {}).items():
        if info.get("best_val_psnr") is not None:
            scores[arm] = float(info["best_val_psnr"])
    if scores:
        return scores
    for trial in study.summary.get("trials", []):
        arm, value = trial.get("arm"), trial.get("best_val_psnr")
        if isinstance(arm, str) and isinstance(value, (int, float)) and math.isfinite(float(value)):
            scores[arm] = max(scores.get(arm, -math.inf), float(value))
    if scores:
        return scores
    val = study.val
    if not val.empty and "psnr" in val.columns:
        per_trial = val.groupby(["arm", "trial_id", "seed"])["psnr"].mean()
        for (arm, _, _), value in per_trial.items():
            if math.isfinite(value):
                scores[arm] = max(scores.get(arm, -math.inf), float(value))
    return scores


def _match(selector: str, arms: Sequence[str], what: str, study: Study) -> list[str]:
    found = [a for a in arms if arm_matches(selector, a)]
    if not found:
        val_only = [a for a in study.val_arms if arm_matches(selector, a)]
        hint = (f"; {', '.join(val_only)} only has validation rows (confirm stage missing)" if val_only else "")
        raise ReportError(
            f"{what} {selector!r} matches no arm with test rows; arms with test rows: {', '.join(arms)}{hint} "
            f"(files: {', '.join(study.sources)})"
        )
    return found


def report_section(study: Study) -> dict[str, Any]:
    """The study config's ``report:`` section as study_summary.json recorded it (empty without one)."""
    config = study.summary.get("config")
    section = config.get("report") if isinstance(config, dict) else None
    return section if isinstance(section, dict) else {}


def arm_factors(study: Study) -> dict[str, dict[str, Any]]:
    """Each arm's factor values as study_summary.json recorded them (arms without them are left out)."""
    return {arm: info["factors"] for arm, info in study.summary.get("arm_info", {}).items()
            if isinstance(info.get("factors"), dict)}


@dataclass(frozen=True)
class AblationStep:
    """One row of the ablation table: the base arm against an arm that changes exactly one factor.

    Tested as the comparison ``base`` (treatment) vs ``changed`` (control), like the primary comparison of
    a window-15 base against its window-3 change: a positive improvement means the base level is better.
    """

    factor: str
    base_level: Any
    changed_level: Any
    base: str
    changed: str


def ablation_steps(study: Study) -> list[AblationStep]:
    """Every arm with test rows that differs from the study's base arm in exactly one factor, in the study's
    arm order (one_at_a_time: one per factor change; grid: the base's one-factor neighbours)."""
    base = study.summary.get("base_arm")
    factors = arm_factors(study)
    if not isinstance(base, str) or base not in factors or base not in study.test_arms:
        return []
    steps = []
    for arm in study.summary.get("arms", []):
        if arm == base or arm not in factors or arm not in study.test_arms:
            continue
        changes = changed_factors(factors[arm], factors[base])
        if len(changes) == 1:
            key = changes[0]
            steps.append(AblationStep(key, factors[base].get(key), factors[arm].get(key), base, arm))
    return steps


def primary_selectors(study: Study, options: ReportOptions) -> tuple[ReportOptions, list[str]]:
    """The primary comparison's selectors: the command line's, else the study config's ``report.treatment`` /
    ``report.control``, else (a one_at_a_time study whose base arm has a window above 3, the PICO's window 15
    in the presets) the base arm against its window-3 change; what is left unset falls to
    :func:`plan_comparisons`' defaults."""
    notes: list[str] = []
    section = report_section(study)
    treatments, controls = options.treatments, options.controls
    if not treatments and isinstance(section.get("treatment"), str):
        treatments = [section["treatment"]]
        notes.append(f"treatment {section['treatment']!r}: the study config's report.treatment")
    if not controls and isinstance(section.get("control"), str):
        controls = [section["control"]]
        notes.append(f"control {section['control']!r}: the study config's report.control")
    config = study.summary.get("config")
    design = (config.get("arms") or {}).get("design") if isinstance(config, dict) else None
    base = study.summary.get("base_arm")
    if design == "one_at_a_time" and not treatments and not controls and isinstance(base, str):
        window_steps = [s for s in ablation_steps(study) if s.factor == WINDOW_KEY and s.changed_level == 3]
        base_window = arm_factors(study).get(base, {}).get(WINDOW_KEY)
        if isinstance(base_window, int) and base_window > 3 and window_steps:
            treatments, controls = [base], [window_steps[0].changed]
            notes.append(f"primary comparison: the one_at_a_time base arm {base} against its window-3 change "
                         f"{window_steps[0].changed} (the PICO's wide window vs window 3)")
    return replace(options, treatments=treatments, controls=controls), notes


def ablation_family(study: Study, options: ReportOptions) -> str:
    """Where the ablation rows are tested: the command line's choice, else the study config's, else secondary."""
    choice = options.ablation_family or report_section(study).get("ablation_family") or "secondary"
    if choice not in decision.ABLATION_FAMILIES:
        raise ReportError(f"the study config's report.ablation_family {choice!r} "
                          f"({', '.join(study.summary.get('sources', []))}): expected one of "
                          f"{', '.join(decision.ABLATION_FAMILIES)}")
    return str(choice)


def plan_comparisons(study: Study, options: ReportOptions) -> tuple[list[Comparison], list[str]]:
    """Decide the comparisons (see :mod:`lift.report.analysis` for the rules); returns them and notes on the choice."""
    arms = study.test_arms
    notes: list[str] = []
    primary_controls, secondary_controls = _controls(study, options, notes)
    controls = primary_controls + [c for c in secondary_controls if c not in primary_controls]
    if options.treatments:
        treatments = _selected_treatments(study, options.treatments, primary_controls, notes)
    else:
        treatments = _default_treatments(study, controls, notes)
    if not controls:
        raise ReportError(
            f"no control arm: the test rows hold {', '.join(arms)}, with no {DEFAULT_CONTROL} and no baseline arm; "
            f"give one with --control"
        )
    comparisons = [Comparison(t, c, "primary") for t in treatments for c in primary_controls if t != c]
    comparisons += [Comparison(t, c, "secondary") for t in treatments for c in controls
                    if c not in primary_controls and t != c]
    if not comparisons:
        raise ReportError("no comparison left after removing arms compared with themselves")
    return comparisons, notes


def _controls(study: Study, options: ReportOptions, notes: list[str]) -> tuple[list[str], list[str]]:
    """(primary controls, secondary controls): the named ones, else window 3 (the baselines secondary),
    else the baselines as primary controls."""
    arms = study.test_arms
    baselines = [a for a in arms if is_baseline(a)]
    if options.controls:
        primary_controls: list[str] = []
        for sel in options.controls:
            found = _match(sel, arms, "control selector", study)
            if len(found) > 1:
                raise ReportError(f"control selector {sel!r} is ambiguous: it matches {', '.join(found)}; give the full arm")
            primary_controls.append(found[0])
        # the baselines stay in the secondary family (STATISTICS.md) whoever names the control
        secondary_controls = [b for b in baselines if b not in primary_controls]
    else:
        threes = [a for a in arms if not is_baseline(a) and arm_window(a) == 3]
        if len(threes) > 1:
            raise ReportError(f"several window=3 arms ({', '.join(threes)}): choose the control with --control")
        if threes:
            primary_controls, secondary_controls = threes, baselines
        else:
            primary_controls, secondary_controls = baselines, []
            notes.append(
                f"no {DEFAULT_CONTROL} arm with test rows: the treatment is compared with the baselines only, "
                f"which cannot show that far context helps"
            )
    return list(dict.fromkeys(primary_controls)), secondary_controls


def _selected_treatments(study: Study, selectors: Sequence[str], primary_controls: list[str],
                         notes: list[str]) -> list[str]:
    """Every test arm the treatment selectors match, the primary controls excepted."""
    arms = study.test_arms
    treatments: list[str] = []
    for sel in selectors:
        treatments.extend(_match(sel, arms, "treatment selector", study))
    treatments = [t for t in dict.fromkeys(treatments) if t not in primary_controls]
    if not treatments:
        raise ReportError(f"the treatment selector(s) {', '.join(selectors)} only match the control arm(s)")
    if any(len([a for a in arms if arm_matches(s, a)]) > 1 for s in selectors):
        notes.append(f"the treatment selector matches several arms; each is compared: {', '.join(treatments)}")
    return treatments


def _default_treatments(study: Study, controls: list[str], notes: list[str]) -> list[str]:
    """The largest-window model arm; of several, the one with the best validation PSNR (else all)."""
    arms = study.test_arms
    candidates = [a for a in arms if not is_baseline(a) and a not in controls and arm_window(a) is not None]
    if not candidates:
        candidates = [a for a in arms if a not in controls]
    if not candidates:
        raise ReportError(
            f"nothing to compare: the test rows hold only the arm(s) {', '.join(arms)}; "
            f"a report needs a treatment arm and a control arm"
        )
    largest = max((arm_window(a) or 0) for a in candidates)
    widest = [a for a in candidates if (arm_window(a) or 0) == largest]
    if len(widest) == 1:
        notes.append(f"treatment {widest[0]}: the largest-window arm (default; change with --treatment)")
        return widest
    scores = validation_scores(study)
    if not all(a in scores for a in widest):
        notes.append(f"no validation scores to pick one window={largest} arm: each is compared ({', '.join(widest)})")
        return widest
    best = max(widest, key=lambda a: scores[a])
    notes.append(
        f"treatment {best} chosen as the window={largest} arm with the best validation PSNR "
        f"({', '.join(f'{a}: {scores[a]:.3f}' for a in widest)})"
    )
    return [best]
