"""From a validated :class:`~lift.report.tables.Study` to the report's numbers (STATISTICS.md, version 2):
which arms are compared in which family, every test, the verdict and the caveats.

* Unit: the independent source (``cluster_id``). Per cluster, d_c = seed-averaged T minus C, oriented.
* Primary family (decides H0): the treatment against window 3; the endpoints of the study's family
  (``study_summary.json`` ``family``, written from the study config's ``report:`` section) in fixed sequence
  or Holm, with the harm check; the test of each metric is :mod:`lift.report.decision`'s (seeds random).
  Several primary treatments (a selector matching several arms) share alpha by Bonferroni.
* Treatment selection. ``--treatment SEL`` (else the study config's ``report.treatment``) picks every test
  arm whose key=value pairs include SEL's. Without either: in a one_at_a_time study whose base arm has a
  window above 3, the base arm (against its window-3 change); else the largest-window model arm; if several
  share that window, the one with the best validation PSNR (tuning summary or val rows), or all of them
  when there is no validation information.
* Control. ``--control SEL`` (else ``report.control``) must match exactly one arm; default ``window=3``;
  with none, the baselines become primary controls (and the report says that cannot show that context
  helps). The baselines are otherwise secondary controls.
* Ablation table: each arm that differs from the study's base arm (``study_summary.json``'s ``base_arm``
  and per-arm ``factors``) in exactly one factor, tested as base vs that arm with the primary's test; in
  the secondary family (default) or in their own Holm family, not gatekept (``report.ablation_family:
  own``). A change that is the primary comparison is that comparison.
* Secondary family, gatekept (tested only when H0 is rejected), Holm inside: the treatment against each
  baseline, each other window > 3 arm (offset) against window 3.
* Sanity: window 3 against ``blend`` on the first endpoint (point estimate); when it fails, the verdict is
  "inconclusive".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lift.arms import WINDOW_KEY, changed_factors, format_value
from lift.report import decision, stats
from lift.report.tables import (
    ReportError,
    Study,
    arm_matches,
    arm_offset,
    arm_sort_key,
    arm_window,
    is_baseline,
    pair_arms,
    parse_arm,
    seed_average,
    seed_cluster_means,
    seed_table,
    sorted_arms,
)

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
    family: str  # "primary", "secondary", "ablation" (the ablation table's own Holm family) or "sanity"

    @property
    def primary(self) -> bool:
        return self.family == "primary"

    @property
    def label(self) -> str:
        return f"{self.treatment} vs {self.control}"


@dataclass
class Analysis:
    """Everything the writers need: results.json content, named tables, per-cluster differences."""

    results: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    per_cluster: dict[str, pd.DataFrame]
    comparisons: list[Comparison]
    study: Study
    options: ReportOptions
    caveats: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Which arms are compared
# ---------------------------------------------------------------------------------------------

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
    """Decide the comparisons (see the module docstring for the rules); returns them and notes on the choice."""
    arms = study.test_arms
    notes: list[str] = []
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
    primary_controls = list(dict.fromkeys(primary_controls))
    controls = primary_controls + [c for c in secondary_controls if c not in primary_controls]
    if options.treatments:
        treatments: list[str] = []
        for sel in options.treatments:
            treatments.extend(_match(sel, arms, "treatment selector", study))
        treatments = [t for t in dict.fromkeys(treatments) if t not in primary_controls]
        if not treatments:
            raise ReportError(f"the treatment selector(s) {', '.join(options.treatments)} only match the control arm(s)")
        if any(len([a for a in arms if arm_matches(s, a)]) > 1 for s in options.treatments):
            notes.append(f"the treatment selector matches several arms; each is compared: {', '.join(treatments)}")
    else:
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
        treatments = widest
        if len(widest) > 1:
            scores = validation_scores(study)
            if all(a in scores for a in widest):
                best = max(widest, key=lambda a: scores[a])
                treatments = [best]
                notes.append(
                    f"treatment {best} chosen as the window={largest} arm with the best validation PSNR "
                    f"({', '.join(f'{a}: {scores[a]:.3f}' for a in widest)})"
                )
            else:
                notes.append(f"no validation scores to pick one window={largest} arm: each is compared ({', '.join(widest)})")
        else:
            notes.append(f"treatment {widest[0]}: the largest-window arm (default; change with --treatment)")
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


# ---------------------------------------------------------------------------------------------
# Study completeness
# ---------------------------------------------------------------------------------------------

def completeness(study: Study) -> tuple[dict[str, Any], list[str]]:
    """Which arms or seeds are missing from the test rows, relative to the summary, val rows and other arms."""
    test = study.test
    expected = sorted_arms(set(study.summary.get("arms", [])) | set(study.val_arms) | set(study.test_arms))
    missing_arms = [a for a in expected if a not in study.test_arms]
    seeds = {a: sorted(int(s) for s in test.loc[test["arm"] == a, "seed"].unique()) for a in study.test_arms}
    model_seeds = sorted({s for a, ss in seeds.items() if not is_baseline(a) for s in ss})
    missing_seeds = {a: [s for s in model_seeds if s not in ss]
                     for a, ss in seeds.items() if not is_baseline(a) and any(s not in ss for s in model_seeds)}
    caveats = []
    if missing_arms:
        caveats.append(
            f"partial study: arm(s) {', '.join(missing_arms)} appear in the tuning summary or validation rows but have "
            f"no test rows (confirm stage not run or failed); they are not tested"
        )
    for arm, miss in missing_seeds.items():
        caveats.append(f"partial study: arm {arm} lacks test seed(s) {', '.join(map(str, miss))} that other arms have "
                       f"(has {', '.join(map(str, seeds[arm]))}); its values are averaged over the seeds present")
    info = {"expected_arms": expected, "test_arms": study.test_arms, "missing_arms": missing_arms,
            "seeds": {a: s for a, s in seeds.items()}, "missing_seeds": missing_seeds}
    return info, caveats


def tuning_table(study: Study) -> tuple[pd.DataFrame, list[str]]:
    """Trials per arm, failures and the best configuration, from study_summary.json or the val rows."""
    trials = study.summary.get("trials", [])
    caveats: list[str] = []
    rows = []
    if trials:
        by_arm: dict[str, list[dict]] = {}
        for t in trials:
            by_arm.setdefault(str(t.get("arm", "?")), []).append(t)
        arm_info = study.summary.get("arm_info", {})
        for arm in sorted_arms(by_arm):
            ts = by_arm[arm]
            failed = [t for t in ts if _failed(t)]
            stopped = [t for t in ts if "STOP" in str(t.get("status", "")).upper()]
            scored = [t for t in ts if isinstance(t.get("best_val_psnr"), (int, float))
                      and math.isfinite(float(t["best_val_psnr"]))]
            best = max(scored, key=lambda t: float(t["best_val_psnr"])) if scored else None
            info = arm_info.get(arm, {})
            if info.get("best_val_psnr") is not None:  # the study's own choice of the best trial wins
                best_trial, best_val = str(info.get("best_trial") or ""), float(info["best_val_psnr"])
                match = next((t for t in ts if str(t.get("trial_id")) == best_trial), None)
                config = info.get("best_params") or (match or {}).get("config", {})
            else:
                best_trial = str(best.get("trial_id", "")) if best else ""
                best_val = float(best["best_val_psnr"]) if best else float("nan")
                config = best.get("config", {}) if best else {}
            rows.append({
                "arm": arm, "n_trials": len(ts), "n_failed": len(failed), "n_stopped_early": len(stopped),
                "best_trial": best_trial, "best_val_psnr": best_val,
                "best_config": json.dumps(config, sort_keys=True, default=str) if config else "",
                "source": "study_summary.json",
            })
            if failed:
                caveats.append(f"arm {arm}: {len(failed)} of {len(ts)} tuning trial(s) failed")
    elif not study.val.empty:
        val = study.val
        metrics = [m for m in study.metrics if m in val.columns]
        for arm in sorted_arms(val["arm"].unique()):
            per_trial = val[val["arm"] == arm].groupby(["trial_id", "seed"])[metrics].mean().reset_index()
            best = per_trial.sort_values("psnr", ascending=False).iloc[0] if "psnr" in metrics else per_trial.iloc[0]
            rows.append({
                "arm": arm, "n_trials": int(per_trial["trial_id"].nunique()), "n_failed": 0, "n_stopped_early": 0,
                "best_trial": str(best["trial_id"]),
                "best_val_psnr": float(best["psnr"]) if "psnr" in metrics else float("nan"),
                "best_config": "", "source": "val rows",
            })
    confirm_failed = [r for r in study.summary.get("confirm", []) if _failed(r)]
    for run in confirm_failed:
        caveats.append(f"arm {run.get('arm', '?')}: the confirm run with seed {run.get('seed', '?')} failed "
                       f"(trial {run.get('trial_id', '?')})")
    listed = sum(r["n_failed"] for r in rows if r["source"] == "study_summary.json") + len(confirm_failed)
    total_failed = int(study.summary.get("failed_trials", 0) or 0)
    if total_failed > listed:
        caveats.append(f"the study summary reports {total_failed} failed trial(s) in total")
    return pd.DataFrame(rows, columns=["arm", "n_trials", "n_failed", "n_stopped_early", "best_trial",
                                       "best_val_psnr", "best_config", "source"]), caveats


def _failed(record: dict[str, Any]) -> bool:
    status = str(record.get("status", "")).upper()
    return "ERROR" in status or "FAIL" in status


def validation_table(study: Study) -> pd.DataFrame:
    """Mean validation metrics per arm and trial (summarised only, never tested)."""
    val = study.val
    if val.empty:
        return pd.DataFrame(columns=["arm", "trial_id", "seed", "n"])
    cols = [m for m in study.metrics if m in val.columns]
    g = val.groupby(["arm", "trial_id", "seed"])
    out = g[cols].mean()
    out.insert(0, "n", g.size())
    out = out.reset_index()
    out["_k"] = out["arm"].map(arm_sort_key)
    return out.sort_values(["_k", "trial_id"]).drop(columns="_k").reset_index(drop=True)


def arm_summary(study: Study, level: float) -> pd.DataFrame:
    """Per test arm: samples, videos, clusters, seeds, and each metric's mean over clusters with a t interval
    over the per-cluster means (of seed-averaged samples)."""
    test = study.test
    cols = study.metrics + study.flow_metrics
    rows = []
    for arm in study.test_arms:
        avg = seed_average(test, arm, cols)
        row: dict[str, Any] = {
            "arm": arm, "window": arm_window(arm), "offset": arm_offset(arm), "baseline": is_baseline(arm),
            "n": len(avg), "n_videos": int(avg["video_id"].nunique()), "n_clusters": int(avg["cluster_id"].nunique()),
            "seeds": ",".join(map(str, sorted(test.loc[test["arm"] == arm, "seed"].unique()))),
            "n_psnr_capped": study.n_psnr_capped.get(arm, 0),
        }
        for m in cols:
            vals = avg[m].to_numpy(dtype=float)
            ok = np.isfinite(vals)
            if not ok.any():
                row.update({f"{m}_mean": float("nan"), f"{m}_ci_low": float("nan"), f"{m}_ci_high": float("nan")})
                continue
            _, cmeans, _ = stats.video_means(vals[ok], avg["cluster_id"].to_numpy()[ok])
            mean, lo, hi = stats.t_interval(cmeans, level)
            row.update({f"{m}_mean": mean, f"{m}_ci_low": lo, f"{m}_ci_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The comparisons
# ---------------------------------------------------------------------------------------------

def _per_seed_diffs(study: Study, comp: Comparison, metric: str) -> list[dict[str, Any]]:
    """Mean raw difference per seed (cluster-weighted), pairing seed with seed when both arms share >= 2 seeds,
    else the multi-seed arm's seeds against the other arm's seed average."""
    test = study.test
    t_rows, c_rows = test[test["arm"] == comp.treatment], test[test["arm"] == comp.control]
    t_seeds, c_seeds = sorted(t_rows["seed"].unique()), sorted(c_rows["seed"].unique())

    def diff(t: pd.DataFrame, c: pd.DataFrame) -> float:
        m = t.merge(c, on="sample_id", suffixes=("_t", "_c"))
        return float((m[f"{metric}_t"] - m[f"{metric}_c"]).groupby(m["cluster_id_t"]).mean().mean())

    out = []
    if len(t_seeds) >= 2 and t_seeds == c_seeds:
        for s in t_seeds:
            out.append({"seed": f"{s}", "mean_diff": diff(t_rows[t_rows["seed"] == s], c_rows[c_rows["seed"] == s])})
    elif len(t_seeds) >= 2:
        c = seed_average(test, comp.control, [metric])
        for s in t_seeds:
            out.append({"seed": f"T{s}", "mean_diff": diff(t_rows[t_rows["seed"] == s], c)})
    elif len(c_seeds) >= 2:
        t = seed_average(test, comp.treatment, [metric])
        for s in c_seeds:
            out.append({"seed": f"C{s}", "mean_diff": diff(t, c_rows[c_rows["seed"] == s])})
    return out


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def resolve_family(study: Study, options: ReportOptions) -> tuple[decision.Family, list[str]]:
    """The family from the study config (study_summary.json's ``family``), else the default; command-line
    ``--alpha``/``--procedure`` override it with a note (then it was not fixed in advance)."""
    notes: list[str] = []
    raw = study.summary.get("family")
    try:
        family = decision.Family.from_dict(raw) if isinstance(raw, dict) else decision.Family()
    except ValueError as exc:
        raise ReportError(f"the study summary's family ({', '.join(study.summary.get('sources', []))}): {exc}") from None
    if not isinstance(raw, dict):
        notes.append("no family in the study summary: the default one is used (PSNR, SSIM, LPIPS in fixed sequence)")
    changes = {}
    if options.alpha is not None and options.alpha != family.alpha:
        changes["alpha"] = options.alpha
    if options.procedure is not None and options.procedure != family.procedure:
        changes["procedure"] = options.procedure
    if changes:
        try:
            family = replace(family, **changes)
        except ValueError as exc:
            raise ReportError(str(exc)) from None
        if isinstance(raw, dict):
            notes.append(f"the command line overrides the study's pre-registered family ({changes}): "
                         f"the decision is no longer the one fixed in advance")
    missing = [m for m in family.endpoints if m not in study.metrics]
    if missing:
        raise ReportError(f"the family's endpoint(s) {', '.join(missing)} are not among the tested metrics "
                          f"{', '.join(study.metrics)}; add them with --metrics")
    return family, notes


def _other_factors(arm: str) -> tuple[tuple[str, str], ...]:
    """The arm's name pairs other than window and offset (what an offset arm shares with the treatment)."""
    return tuple(sorted((k, v) for k, v in parse_arm(arm).items() if k not in ("window", "offset")))


def _secondary_and_sanity(study: Study, primary: list[Comparison], baselines_secondary: list[Comparison]) -> list[Comparison]:
    """The gatekept secondary family (treatment vs each baseline, each other offset arm vs window 3) and the
    sanity check (window 3 vs blend)."""
    out = list(baselines_secondary)
    arms = study.test_arms
    controls = sorted({c.control for c in primary})
    treatments = {c.treatment for c in primary}
    # An offset arm is a treatment arm with another window or offset and nothing else changed: arms that also
    # change another factor belong to the ablation table, not to the H0 of the temporal context.
    contexts = {_other_factors(t) for t in treatments}
    for ctrl in controls:
        if arm_window(ctrl) != 3:
            continue
        for arm in arms:
            if (not is_baseline(arm) and arm not in treatments and arm != ctrl and (arm_window(arm) or 0) > 3
                    and _other_factors(arm) in contexts):
                out.append(Comparison(arm, ctrl, "secondary"))
        for arm in arms:
            if arm_matches("baseline=blend", arm):
                out.append(Comparison(ctrl, arm, "sanity"))
    return list(dict.fromkeys(out))


def _orient_ci(lo: float, hi: float, direction: int) -> tuple[float, float]:
    """An interval of improvements (oriented) back in metric units (treatment − control)."""
    return (lo, hi) if direction > 0 else (-hi, -lo)


def _comparison(study: Study, comp: Comparison, metrics: Sequence[str], options: ReportOptions,
                family: decision.Family, index: int) -> dict[str, Any]:
    """Everything of one comparison except the family decision: matrices, tests, effect sizes, per-cluster table."""
    test = study.test
    paired = pair_arms(test, comp.treatment, comp.control, metrics)
    clusters = sorted(paired["cluster_id"].unique())
    directions = [stats.metric_direction(m) for m in metrics]
    t_mat = np.stack([seed_cluster_means(test, comp.treatment, m, clusters) for m in metrics])[None]
    c_mat = np.stack([seed_cluster_means(test, comp.control, m, clusters) for m in metrics])[None]
    tests = [decision.seed_cluster_test(t_mat[:, j], c_mat[:, j], directions[j], options.level)
             for j in range(len(metrics))]
    per_cluster = (paired.groupby("cluster_id").agg(n_samples=("sample_id", "size"), n_videos=("video_id", "nunique"))
                   .reindex(clusters).reset_index())
    seed_rows = []
    metric_dicts = []
    for j, (metric, direction, mt) in enumerate(zip(metrics, directions, tests)):
        d_c = mt.d_c[0]
        t_c, c_c = t_mat[0, j].mean(axis=0), c_mat[0, j].mean(axis=0)
        lo, hi = _orient_ci(float(mt.ci_low[0]), float(mt.ci_high[0]), direction)
        samples = stats.oriented(paired[f"{metric}_t"] - paired[f"{metric}_c"], direction)
        perm = stats.sign_flip_permutation(d_c, n_resamples=options.n_permutations, seed=options.seed + 1000 * index + j)
        per_cluster[f"{metric}_diff"] = t_c - c_c
        per_cluster[f"{metric}_improvement"] = d_c
        seeds = _per_seed_diffs(study, comp, metric)
        for row in seeds:
            seed_rows.append({"treatment": comp.treatment, "control": comp.control, "metric": metric, **row,
                              "improves": bool(direction * row["mean_diff"] > 0)})
        nonzero = [direction * r["mean_diff"] > 0 for r in seeds if r["mean_diff"] != 0]
        sesoi = family.sesoi_of(metric)
        metric_dicts.append({
            "metric": metric, "direction": direction, "n": int(len(paired)), "n_clusters": len(clusters),
            "mean_treatment": float(t_c.mean()), "mean_control": float(c_c.mean()), "mean_diff": float((t_c - c_c).mean()),
            "ci_low": lo, "ci_high": hi, "se": float(mt.se[0]), "df": float(mt.df[0]),
            "p_seeds": float(mt.p_seeds[0]), "p_wilcoxon": float(mt.p_wilcoxon[0]),
            "p_decision": float(mt.p_better[0]), "p_decision_worse": float(mt.p_worse[0]),
            "p_ttest": stats.ttest_p(d_c), "p_permutation": perm.pvalue, "permutation_exact": perm.exact,
            "p_wilcoxon_samples": stats.wilcoxon_p(samples),
            "effect_dz": stats.cohens_dz(d_c), "rank_biserial": stats.rank_biserial(d_c),
            "n_clusters_improved": int((d_c > 0).sum()), "n_clusters_worse": int((d_c < 0).sum()),
            "min_p": decision.min_achievable_p(len(clusters), "fixed_sequence", 1),
            "sesoi": sesoi, "every_seed_agrees": bool(nonzero) and (all(nonzero) or not any(nonzero)),
            "improvement_ci_low": float(mt.ci_low[0]), "improvement_ci_high": float(mt.ci_high[0]),
        })
    n_capped = 0
    if "psnr_capped_t" in paired.columns:
        n_capped = int((paired["psnr_capped_t"].astype(bool) | paired["psnr_capped_c"].astype(bool)).sum())
    return {
        "treatment": comp.treatment, "control": comp.control, "family": comp.family, "primary": comp.primary,
        "n": int(len(paired)), "n_videos": int(paired["video_id"].nunique()), "n_clusters": len(clusters),
        "n_psnr_capped": n_capped,
        "seeds_treatment": sorted(int(s) for s in test.loc[test["arm"] == comp.treatment, "seed"].unique()),
        "seeds_control": sorted(int(s) for s in test.loc[test["arm"] == comp.control, "seed"].unique()),
        "metrics": metric_dicts, "_tests": tests, "_t": t_mat, "_c": c_mat, "_per_cluster": per_cluster,
        "_seed_rows": seed_rows,
    }


def _sesoi_status(d: dict[str, Any]) -> str:
    if not d["significant"]:
        return "worse" if d["worse"] else "not significant"
    return ("at least the smallest effect of interest" if d["improvement_ci_low"] >= d["sesoi"]
            else "significant but not shown to reach the smallest effect of interest")


def _decide_primary(comps: list[dict[str, Any]], family: decision.Family, blend: dict[str, Any] | None,
                    level: float) -> list[tuple[str, str]]:
    """Run the primary family on each primary comparison (Bonferroni across them when there are several)."""
    alpha = family.alpha / max(len(comps), 1)
    verdicts = []
    for c in comps:
        directions = [d["direction"] for d in c["metrics"]]
        blend_mat = None
        if blend is not None and blend["treatment"] == c["control"]:
            blend_mat = blend["_c"]
        res = decision.decide_primary(c["_t"], c["_c"], directions, procedure=family.procedure, alpha=alpha,
                                      blend=blend_mat, level=level)
        for j, d in enumerate(c["metrics"]):
            d["p_holm"] = float(res.family.p_adjusted[0, j])
            d["significant"] = bool(res.family.significant[0, j])
            d["worse"] = bool(res.family.worse[0, j])
            d["tested"] = True
            d["sesoi_status"] = _sesoi_status(d)
        c["reject_h0"] = bool(res.reject_h0[0])
        c["family_reject"] = bool(res.family.reject_h0[0])
        c["sanity_ok"] = None if res.sanity_ok is None else bool(res.sanity_ok[0])
        c["alpha_used"] = alpha
        verdicts.append(decision.verdict(res))
    return verdicts


def _decide_secondary(comps: list[dict[str, Any]], gate_open: bool, alpha: float) -> None:
    """Holm over every (comparison, endpoint) of the secondary family; tested only when the primary rejected H0."""
    flat = [d for c in comps for d in c["metrics"]]
    if not flat:
        return
    p_holm = decision.holm_adjust(np.array([d["p_decision"] for d in flat]))
    for d, p in zip(flat, p_holm):
        d["p_holm"] = float(p)
        d["tested"] = gate_open
        d["significant"] = bool(gate_open and p < alpha)
        d["worse"] = bool(gate_open and d["p_decision_worse"] < alpha)
        d["sesoi_status"] = _sesoi_status(d) if gate_open else "not tested (the primary family did not reject H0)"
    for c in comps:
        c["reject_h0"] = any(d["significant"] for d in c["metrics"])


def _ablation_comparisons(steps: Sequence[AblationStep], planned: Sequence[Comparison], family: str) -> list[Comparison]:
    """The comparison of each ablation step: one already planned for the same two arms (the primary
    comparison, in either orientation) is reused; the others go to the secondary or their own family."""
    out = []
    for step in steps:
        pair = {step.base, step.changed}
        same = next((c for c in planned if {c.treatment, c.control} == pair and c.family != "sanity"), None)
        out.append(same or Comparison(step.base, step.changed, "secondary" if family == "secondary" else "ablation"))
    return out


def ablation_verdict(comp: dict[str, Any], step: AblationStep, primary_verdict: str) -> str:
    """A row's verdict in words: which level is better on which endpoints, within the row's family (the
    study's verdict for the primary comparison)."""
    if comp["family"] == "primary":
        return f"primary comparison: {primary_verdict}"
    if not all(d.get("tested", True) for d in comp["metrics"]):
        return "not tested (the primary family did not reject H0)"
    levels = {step.base: step.base_level, step.changed: step.changed_level}
    better = [display(d["metric"]) for d in comp["metrics"] if d["significant"]]
    worse = [display(d["metric"]) for d in comp["metrics"] if d["worse"]]
    parts = []
    if better:
        parts.append(f"{step.factor}={format_value(levels[comp['treatment']])} better on {', '.join(better)}")
    if worse:
        parts.append(f"{step.factor}={format_value(levels[comp['control']])} better on {', '.join(worse)}")
    return "; ".join(parts) if parts else "no significant difference"


def ablation_rows(steps: Sequence[AblationStep], step_comparisons: Sequence[Comparison], comps: Sequence[dict[str, Any]],
                  primary_verdict: str) -> list[dict[str, Any]]:
    """One row per factor change: the change, its comparison's family, per endpoint the raw difference (T − C)
    and the improvement (oriented as in the decision) with their intervals and p-values, and a verdict."""
    by_pair = {(c["treatment"], c["control"]): c for c in comps}
    rows = []
    for step, plan in zip(steps, step_comparisons):
        comp = by_pair[(plan.treatment, plan.control)]
        metrics = []
        for d in comp["metrics"]:
            metrics.append({
                "metric": d["metric"], "direction": d["direction"], "diff": d["mean_diff"], "ci_low": d["ci_low"],
                "ci_high": d["ci_high"], "improvement": d["direction"] * d["mean_diff"],
                "improvement_ci_low": d["improvement_ci_low"], "improvement_ci_high": d["improvement_ci_high"],
                "p": d["p_decision"], "p_adjusted": d.get("p_holm"), "p_worse": d["p_decision_worse"],
                "tested": d.get("tested", True), "significant": d["significant"], "worse": d["worse"],
                "sesoi_status": d.get("sesoi_status", ""),
            })
        rows.append({
            "factor": step.factor, "base_level": step.base_level, "changed_level": step.changed_level,
            "change": f"{step.factor}: {format_value(step.base_level)} → {format_value(step.changed_level)}",
            "base_arm": step.base, "changed_arm": step.changed, "treatment": comp["treatment"],
            "control": comp["control"], "family": comp["family"], "n_clusters": comp["n_clusters"],
            "seeds_treatment": comp["seeds_treatment"], "seeds_control": comp["seeds_control"],
            "verdict": ablation_verdict(comp, step, primary_verdict), "metrics": metrics,
        })
    return rows


def ablation_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The ablation rows flattened for tables/ablation.csv: one column per (endpoint, quantity)."""
    flat = []
    for r in rows:
        out = {k: v for k, v in r.items() if k != "metrics"}
        out["base_level"], out["changed_level"] = format_value(r["base_level"]), format_value(r["changed_level"])
        out["seeds_treatment"] = ",".join(map(str, r["seeds_treatment"]))
        out["seeds_control"] = ",".join(map(str, r["seeds_control"]))
        for d in r["metrics"]:
            for key in ("diff", "ci_low", "ci_high", "improvement", "improvement_ci_low", "improvement_ci_high", "p",
                        "p_adjusted", "significant", "worse"):
                out[f"{d['metric']}_{key}"] = d[key]
        flat.append(out)
    return pd.DataFrame(flat)


def _combine_verdicts(verdicts: list[tuple[str, str]]) -> tuple[str, str]:
    for v in (decision.VERDICTS[3], decision.VERDICTS[2], decision.VERDICTS[0]):
        hits = [why for name, why in verdicts if name == v]
        if hits:
            return v, "; ".join(h for h in hits if h)
    return decision.VERDICTS[1], ""


def analyse(study: Study, options: ReportOptions | None = None) -> Analysis:
    """Run the family of STATISTICS.md (version 2) on the study and assemble results, tables and caveats."""
    options = options or ReportOptions()
    options.validate()
    family, family_notes = resolve_family(study, options)
    selected, selector_notes = primary_selectors(study, options)
    planned, notes = plan_comparisons(study, selected)
    primary = [c for c in planned if c.primary]
    comparisons = primary + _secondary_and_sanity(study, primary, [c for c in planned if not c.primary])
    steps = ablation_steps(study)
    step_comparisons = _ablation_comparisons(steps, comparisons, ablation_family(study, options))
    comparisons += [c for c in step_comparisons if c not in comparisons]
    notes = list(study.notes) + selector_notes + notes + family_notes
    info, caveats = completeness(study)
    tuning, tuning_caveats = tuning_table(study)
    caveats += tuning_caveats
    test = study.test
    metrics = list(family.endpoints)

    comps = [_comparison(study, comp, metrics, options, family, i) for i, comp in enumerate(comparisons)]
    prim = [c for c in comps if c["family"] == "primary"]
    sanity = next((c for c in comps if c["family"] == "sanity"), None)
    verdicts = _decide_primary(prim, family, sanity, options.level)
    verdict, reason = _combine_verdicts(verdicts)
    reject = verdict == decision.VERDICTS[0]
    _decide_secondary([c for c in comps if c["family"] == "secondary"], reject, family.alpha)
    # The ablation table's own family (report.ablation_family: own): Holm over its rows and endpoints at full
    # alpha, not gatekept by the primary.
    _decide_secondary([c for c in comps if c["family"] == "ablation"], True, family.alpha)
    ablation = ablation_rows(steps, step_comparisons, comps, verdict)
    if sanity is not None:
        _decide_secondary([sanity], True, family.alpha)  # a point check; its tests are shown, not used
        checked = [c["sanity_ok"] for c in prim if c.get("sanity_ok") is not None]
        sanity["sanity_ok"] = checked[0] if checked else None
        for d in sanity["metrics"]:
            d["sesoi_status"] = "sanity check (not a test of H0)"

    per_cluster: dict[str, pd.DataFrame] = {}
    seed_rows: list[dict[str, Any]] = []
    for c in comps:
        label = f"{c['treatment']} vs {c['control']}"
        per_cluster[label] = c.pop("_per_cluster")
        seed_rows += c.pop("_seed_rows")
        for key in ("_tests", "_t", "_c"):
            c.pop(key)
        c.setdefault("reject_h0", False)
    n_clusters = min((c["n_clusters"] for c in prim), default=0)
    design = {
        "n_clusters": n_clusters,
        "min_achievable_p": decision.min_achievable_p(n_clusters, family.procedure, len(metrics)),
        "clusters_needed": decision.clusters_needed(family.alpha, family.procedure, len(metrics)),
        "min_seeds": decision.MIN_SEEDS,
    }
    caveats += _comparison_caveats(comps, seed_rows, family.alpha, design)
    decision_text = decision_sentence(comps, verdict, reason, family)

    spread = seed_table(test, metrics)
    spread_summary = []
    for arm, g in spread.groupby("arm", sort=False):
        for m in metrics:
            vals = g[m].to_numpy(dtype=float)
            spread_summary.append({"arm": arm, "metric": m, "n_seeds": int(len(vals)), "mean": float(vals.mean()),
                                   "std": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                                   "min": float(vals.min()), "max": float(vals.max())})
    arms_table = arm_summary(study, options.level)
    long_rows = [{"treatment": c["treatment"], "control": c["control"], "family": c["family"], "n": c["n"],
                  "n_videos": c["n_videos"], "n_clusters": c["n_clusters"], **d} for c in comps for d in c["metrics"]]
    tables = {
        "comparisons": pd.DataFrame(long_rows),
        "arms": arms_table,
        "seeds": spread,
        "seed_spread": pd.DataFrame(spread_summary),
        "seed_differences": pd.DataFrame(seed_rows, columns=["treatment", "control", "metric", "seed", "mean_diff", "improves"]),
        "tuning": tuning,
        "validation": validation_table(study),
    }
    if study.flow_metrics:
        cols = ["arm", "n", "n_videos", "n_clusters"] + [f"{m}_{s}" for m in study.flow_metrics
                                                          for s in ("mean", "ci_low", "ci_high")]
        tables["flow"] = arms_table[cols]
    for label, pc in per_cluster.items():
        tables[f"per_cluster__{label}"] = pc
    if ablation:
        tables["ablation"] = ablation_table(ablation)

    datasets = sorted({str(s).split("/", 1)[0] for s in test["sample_id"].unique() if "/" in str(s)})
    results = {
        "verdict": verdict,
        "verdict_reason": reason,
        "decision": decision_text,
        "reject_h0": bool(reject),
        "alpha": float(family.alpha),
        "family": family.to_dict(),
        "design": design,
        "comparisons": comps,
        "ablation": {"base_arm": study.summary.get("base_arm"), "family": ablation_family(study, options),
                     "rows": ablation} if ablation else None,
        "primary_test": "per metric, the larger of a seed-aware t-test on the per-cluster differences d_c (SE^2 = "
                        "s^2(d_c)/n + seed variance of each arm / its seeds, Welch-Satterthwaite df) and the one-sided "
                        "Wilcoxon signed-rank test on the d_c; endpoints in "
                        + ("fixed sequence" if family.procedure == "fixed_sequence" else "a Holm family"),
        "metrics": metrics,
        "metric_direction": {m: stats.metric_direction(m) for m in metrics},
        "psnr_cap_db": study.psnr_cap,
        "n_psnr_capped": study.n_psnr_capped,
        "confidence_level": options.level,
        "n_permutations": options.n_permutations,
        "seed": options.seed,
        "datasets": datasets,
        "n_test_samples": int(test["sample_id"].nunique()),
        "n_test_videos": int(test["video_id"].nunique()),
        "n_test_clusters": int(test["cluster_id"].nunique()),
        "study": info,
        "seed_spread": spread_summary,
        "seed_differences": seed_rows,
        "tuning": tuning.to_dict(orient="records"),
        "caveats": caveats,
        "notes": notes,
        "sources": study.sources,
        "summary_sources": study.summary.get("sources", []),
    }
    return Analysis(results=results, tables=tables, per_cluster=per_cluster, comparisons=comparisons,
                    study=study, options=options, caveats=caveats, notes=notes)


def _comparison_caveats(comps: list[dict[str, Any]], seed_rows: list[dict[str, Any]], alpha: float,
                        design: dict[str, Any]) -> list[str]:
    caveats: list[str] = []
    for c in comps:
        label = f"{c['treatment']} vs {c['control']}"
        if c["family"] == "primary" and design["min_achievable_p"] >= alpha:
            caveats.append(
                f"{label}: with {c['n_clusters']} independent source(s) the smallest achievable p is "
                f"{design['min_achievable_p']:.3g} >= alpha={alpha:g}: no data could reject H0; "
                f"{design['clusters_needed']} sources are needed")
        if c["family"] == "sanity" and c.get("sanity_ok") is False:
            caveats.append(f"sanity check failed: {c['treatment']} does not beat {c['control']} on "
                           f"{display(c['metrics'][0]['metric'])}; the models look undertrained")
        sample_only = [d for d in c["metrics"] if d.get("tested") and not d["significant"]
                       and d["p_wilcoxon_samples"] < alpha]
        if sample_only and c["family"] != "sanity":
            desc = ", ".join(f"{display(d['metric'])} (sample-level p = {_fmt_p(d['p_wilcoxon_samples'])})"
                             for d in sample_only)
            caveats.append(f"{label}: significant only at the sample level, which treats the {c['n']} frames as "
                           f"independent, not over the {c['n_clusters']} independent sources: {desc}")
        for d in c["metrics"]:
            if d["worse"] and c["family"] != "sanity":
                caveats.append(f"{label}: {display(d['metric'])} is significantly WORSE for {c['treatment']} "
                               f"(p = {_fmt_p(d['p_decision_worse'])})")
        if c["n_clusters"] == c["n"]:
            caveats.append(f"{label}: every source contributes one sample, so the cluster and sample levels coincide")
        if c["n_psnr_capped"]:
            caveats.append(f"{label}: {c['n_psnr_capped']} sample(s) had PSNR above the ceiling (e.g. +inf for identical "
                           f"frames) and were capped before differencing")
        for d in c["metrics"]:
            rows = [r for r in seed_rows if r["treatment"] == c["treatment"] and r["control"] == c["control"]
                    and r["metric"] == d["metric"] and r["mean_diff"] != 0]
            if len({r["improves"] for r in rows}) > 1:
                desc = ", ".join(f"seed {r['seed']}: {r['mean_diff']:+.4g}" for r in rows)
                caveats.append(f"{label}, {display(d['metric'])}: seeds disagree on the direction of the effect ({desc})")
        for arm, seeds in ((c["treatment"], c["seeds_treatment"]), (c["control"], c["seeds_control"])):
            if c["family"] == "primary" and len(seeds) < decision.MIN_SEEDS:
                caveats.append(f"arm {arm} has {len(seeds)} test seed(s); a verdict needs at least {decision.MIN_SEEDS} "
                               f"(seed-to-seed variance is part of the standard error)")
    return list(dict.fromkeys(caveats))


def decision_sentence(comps: list[dict[str, Any]], verdict: str, reason: str, family: decision.Family) -> str:
    """One sentence that starts with the verdict: why, the primary metrics, the secondary family."""
    primary = [c for c in comps if c["family"] == "primary"]
    parts = []
    for c in primary:
        sig = [d for d in c["metrics"] if d["significant"]]
        worse = [display(d["metric"]) for d in c["metrics"] if d["worse"]]
        if sig:
            ps = ", ".join(f"{display(d['metric'])} (p={_fmt_p(d['p_holm'])}, {d['sesoi_status']})" for d in sig)
            text = f"{c['treatment']} improves over {c['control']} on {ps}"
        else:
            first = c["metrics"][0]
            text = (f"{c['treatment']} shows no significant improvement over {c['control']} on "
                    f"{display(first['metric'])} (p={_fmt_p(first['p_holm'])})")
        if worse:
            text += f" and is significantly worse on {', '.join(worse)}"
        parts.append(text)
    n_c = sorted({c["n_clusters"] for c in primary})
    order = " → ".join(display(m) for m in family.endpoints)
    head = f"{verdict}" + (f" ({reason})" if reason else "")
    sentence = (f"{head} at alpha={family.alpha:g}: " + "; ".join(parts)
                + f" ({'/'.join(map(str, n_c))} independent sources; endpoints "
                + (f"in fixed sequence {order}" if family.procedure == "fixed_sequence" else f"Holm over {order}") + ")")
    secondary = [c for c in comps if c["family"] == "secondary"]
    if secondary:
        if verdict == decision.VERDICTS[0]:
            beats = [f"{c['treatment']} vs {c['control']}" for c in secondary if c["reject_h0"]]
            sentence += f"; secondary family (Holm): significant for {', '.join(beats) if beats else 'none'}"
        else:
            sentence += "; secondary family not tested (gatekept by the primary)"
    own = [c for c in comps if c["family"] == "ablation"]
    if own:
        beats = [f"{c['treatment']} vs {c['control']}" for c in own if c["reject_h0"]]
        sentence += f"; ablation family (Holm): significant for {', '.join(beats) if beats else 'none'}"
    return sentence + "."
