"""From a validated :class:`~lift.report.tables.Study` to the report's numbers: which arms are
compared, every test of STATISTICS.md, the Holm family, the decision and the caveats.

Choices (documented in the report's method section too):

* Treatment selection. ``--treatment SEL`` picks every test arm whose key=value pairs include
  SEL's; when it matches several arms (e.g. ``window=15`` with offsets 1 and 2) each one is
  compared, and all comparisons share one Holm family, so the family-wise error stays at alpha.
  Without ``--treatment``: the largest-window model arm; if several arms share that window, the
  one with the best validation PSNR (tuning summary or val rows), or all of them when there is no
  validation information.
* Control selection. ``--control SEL`` must match exactly one arm (repeatable); those comparisons
  are primary. Without it: ``window=3`` is the primary control and every baseline arm is a
  secondary control. With neither window=3 nor ``--control``, the baselines become primary.
* Holm runs over every (comparison, metric) primary p-value of the report. The headline
  ``reject_h0`` is decided by the primary comparisons only: beating "repeat the nearest frame"
  is expected of any interpolator and must not carry the claim that far context helps. Each
  comparison has its own ``reject_h0`` too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lift.report import stats
from lift.report.tables import (
    ReportError,
    Study,
    arm_matches,
    arm_offset,
    arm_sort_key,
    arm_window,
    is_baseline,
    pair_arms,
    seed_average,
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
    alpha: float = 0.05
    treatments: list[str] | None = None
    controls: list[str] | None = None
    n_boot: int = 10_000
    n_permutations: int = 10_000
    level: float = 0.95
    seed: int = 0

    def validate(self) -> None:
        if not 0 < self.alpha < 1:
            raise ReportError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.n_boot < 100:
            raise ReportError(f"--n_boot must be at least 100, got {self.n_boot}")
        if self.n_permutations < 100:
            raise ReportError(f"--n_permutations must be at least 100, got {self.n_permutations}")


@dataclass(frozen=True)
class Comparison:
    treatment: str
    control: str
    primary: bool

    @property
    def label(self) -> str:
        return f"{self.treatment} vs {self.control}"


@dataclass
class Analysis:
    """Everything the writers need: results.json content, named tables, per-video differences."""

    results: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    per_video: dict[str, pd.DataFrame]
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
        secondary_controls: list[str] = []
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
    comparisons = [Comparison(t, c, True) for t in treatments for c in primary_controls if t != c]
    comparisons += [Comparison(t, c, False) for t in treatments for c in controls if c not in primary_controls and t != c]
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
    """Per test arm: samples, videos, seeds, and each metric's mean with a t interval over per-video means."""
    test = study.test
    cols = study.metrics + study.flow_metrics
    rows = []
    for arm in study.test_arms:
        avg = seed_average(test, arm, cols)
        row: dict[str, Any] = {
            "arm": arm, "window": arm_window(arm), "offset": arm_offset(arm), "baseline": is_baseline(arm),
            "n": len(avg), "n_videos": int(avg["video_id"].nunique()),
            "seeds": ",".join(map(str, sorted(test.loc[test["arm"] == arm, "seed"].unique()))),
            "n_psnr_capped": study.n_psnr_capped.get(arm, 0),
        }
        for m in cols:
            vals = avg[m].to_numpy(dtype=float)
            ok = np.isfinite(vals)
            if not ok.any():
                row.update({f"{m}_mean": float("nan"), f"{m}_ci_low": float("nan"), f"{m}_ci_high": float("nan")})
                continue
            _, vmeans, _ = stats.video_means(vals[ok], avg["video_id"].to_numpy()[ok])
            mean, lo, hi = stats.t_interval(vmeans, level)
            row.update({f"{m}_mean": float(vals[ok].mean()), f"{m}_ci_low": lo, f"{m}_ci_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The comparisons
# ---------------------------------------------------------------------------------------------

def _per_seed_diffs(study: Study, comp: Comparison, metric: str) -> list[dict[str, Any]]:
    """Mean raw difference per seed, pairing seed with seed when both arms share >= 2 seeds, else
    the multi-seed arm's seeds against the other arm's seed average."""
    test = study.test
    t_rows, c_rows = test[test["arm"] == comp.treatment], test[test["arm"] == comp.control]
    t_seeds, c_seeds = sorted(t_rows["seed"].unique()), sorted(c_rows["seed"].unique())
    out = []
    if len(t_seeds) >= 2 and t_seeds == c_seeds:
        for s in t_seeds:
            m = t_rows[t_rows["seed"] == s].merge(c_rows[c_rows["seed"] == s], on="sample_id", suffixes=("_t", "_c"))
            out.append({"seed": f"{s}", "mean_diff": float((m[f"{metric}_t"] - m[f"{metric}_c"]).mean())})
    elif len(t_seeds) >= 2:
        c = seed_average(test, comp.control, [metric])
        for s in t_seeds:
            m = t_rows[t_rows["seed"] == s].merge(c, on="sample_id", suffixes=("_t", "_c"))
            out.append({"seed": f"T{s}", "mean_diff": float((m[f"{metric}_t"] - m[f"{metric}_c"]).mean())})
    elif len(c_seeds) >= 2:
        t = seed_average(test, comp.treatment, [metric])
        for s in c_seeds:
            m = t.merge(c_rows[c_rows["seed"] == s], on="sample_id", suffixes=("_t", "_c"))
            out.append({"seed": f"C{s}", "mean_diff": float((m[f"{metric}_t"] - m[f"{metric}_c"]).mean())})
    return out


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def analyse(study: Study, options: ReportOptions | None = None) -> Analysis:
    """Run every test of STATISTICS.md on the study and assemble results, tables and caveats."""
    options = options or ReportOptions()
    options.validate()
    comparisons, notes = plan_comparisons(study, options)
    notes = list(study.notes) + notes
    info, caveats = completeness(study)
    tuning, tuning_caveats = tuning_table(study)
    caveats += tuning_caveats
    test = study.test
    metrics = study.metrics

    comp_results: list[dict[str, Any]] = []
    per_video: dict[str, pd.DataFrame] = {}
    flat: list[stats.PairedResult] = []
    seed_rows: list[dict[str, Any]] = []
    for i, comp in enumerate(comparisons):
        paired = pair_arms(test, comp.treatment, comp.control, metrics)
        vids = paired["video_id"].to_numpy()
        results = []
        pv = None
        for j, metric in enumerate(metrics):
            res = stats.paired_video_test(
                paired[f"{metric}_t"].to_numpy(), paired[f"{metric}_c"].to_numpy(), vids,
                metric=metric, n_boot=options.n_boot, n_permutations=options.n_permutations,
                level=options.level, seed=options.seed + 1000 * i + j,
            )
            results.append(res)
            flat.append(res)
            raw = paired[f"{metric}_t"] - paired[f"{metric}_c"]
            uniq, means, counts = stats.video_means(raw.to_numpy(), vids)
            if pv is None:
                pv = pd.DataFrame({"video_id": uniq, "n_samples": counts})
            pv[f"{metric}_diff"] = means
            pv[f"{metric}_improvement"] = stats.oriented(means, res.direction)
            for row in _per_seed_diffs(study, comp, metric):
                seed_rows.append({"treatment": comp.treatment, "control": comp.control, "metric": metric, **row,
                                  "improves": bool(stats.oriented([row["mean_diff"]], res.direction)[0] > 0)})
        per_video[comp.label] = pv
        n_capped = 0
        if "psnr_capped_t" in paired.columns:
            n_capped = int((paired["psnr_capped_t"].astype(bool) | paired["psnr_capped_c"].astype(bool)).sum())
        comp_results.append({
            "treatment": comp.treatment, "control": comp.control, "primary": comp.primary,
            "n": int(len(paired)), "n_videos": int(paired["video_id"].nunique()),
            "one_sample_per_video": bool(paired["video_id"].nunique() == len(paired)),
            "n_psnr_capped": n_capped,
            "seeds_treatment": sorted(int(s) for s in test.loc[test["arm"] == comp.treatment, "seed"].unique()),
            "seeds_control": sorted(int(s) for s in test.loc[test["arm"] == comp.control, "seed"].unique()),
            "_results": results,
        })

    m_family = len(flat)
    p_holm = stats.holm([r.p_wilcoxon for r in flat])
    p_holm_worse = stats.holm([r.p_wilcoxon_worse for r in flat])
    k = 0
    for comp in comp_results:
        metric_dicts = []
        for res in comp.pop("_results"):
            d = res.to_dict()
            d["p_holm"] = float(p_holm[k])
            d["p_holm_worse"] = float(p_holm_worse[k])
            d["significant"] = bool(p_holm[k] < options.alpha)
            d["worse"] = bool(p_holm_worse[k] < options.alpha)
            d["significant_samples_only"] = bool(res.p_wilcoxon_samples < options.alpha and not d["significant"])
            d["min_p_holm"] = float(min(1.0, res.min_p_wilcoxon * m_family))
            metric_dicts.append(d)
            k += 1
        comp["metrics"] = metric_dicts
        comp["reject_h0"] = any(d["significant"] for d in metric_dicts)

    caveats += _comparison_caveats(comp_results, seed_rows, options.alpha, m_family)
    primary = [c for c in comp_results if c["primary"]]
    reject = any(c["reject_h0"] for c in primary)
    decision = decision_sentence(comp_results, options.alpha, m_family)

    spread = seed_table(test, metrics)
    spread_summary = []
    for arm, g in spread.groupby("arm", sort=False):
        for m in metrics:
            vals = g[m].to_numpy(dtype=float)
            spread_summary.append({"arm": arm, "metric": m, "n_seeds": int(len(vals)), "mean": float(vals.mean()),
                                   "std": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                                   "min": float(vals.min()), "max": float(vals.max())})
    arms_table = arm_summary(study, options.level)
    long_rows = [{"treatment": c["treatment"], "control": c["control"], "primary": c["primary"],
                  "n": c["n"], "n_videos": c["n_videos"], **d} for c in comp_results for d in c["metrics"]]
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
        cols = ["arm", "n", "n_videos"] + [f"{m}_{s}" for m in study.flow_metrics for s in ("mean", "ci_low", "ci_high")]
        tables["flow"] = arms_table[cols]
    for label, pv in per_video.items():
        tables[f"per_video__{label}"] = pv

    datasets = sorted({str(s).split("/", 1)[0] for s in test["sample_id"].unique() if "/" in str(s)})
    results = {
        "decision": decision,
        "reject_h0": bool(reject),
        "alpha": float(options.alpha),
        "comparisons": comp_results,
        "primary_test": "one-sided Wilcoxon signed-rank on per-video mean differences (scipy default method), "
                        "Holm-Bonferroni over every (comparison, metric)",
        "holm_family_size": m_family,
        "metrics": metrics,
        "metric_direction": {m: stats.metric_direction(m) for m in metrics},
        "psnr_cap_db": study.psnr_cap,
        "n_psnr_capped": study.n_psnr_capped,
        "confidence_level": options.level,
        "n_boot": options.n_boot,
        "n_permutations": options.n_permutations,
        "seed": options.seed,
        "datasets": datasets,
        "n_test_samples": int(test["sample_id"].nunique()),
        "n_test_videos": int(test["video_id"].nunique()),
        "study": info,
        "seed_spread": spread_summary,
        "seed_differences": seed_rows,
        "tuning": tuning.to_dict(orient="records"),
        "caveats": caveats,
        "notes": notes,
        "sources": study.sources,
        "summary_sources": study.summary.get("sources", []),
    }
    return Analysis(results=results, tables=tables, per_video=per_video, comparisons=comparisons,
                    study=study, options=options, caveats=caveats, notes=notes)


def _comparison_caveats(comp_results: list[dict[str, Any]], seed_rows: list[dict[str, Any]], alpha: float,
                        m_family: int) -> list[str]:
    caveats: list[str] = []
    for c in comp_results:
        label = f"{c['treatment']} vs {c['control']}"
        n_v = c["n_videos"]
        min_raw = min(d["min_p_wilcoxon"] for d in c["metrics"])
        if min_raw > alpha:
            caveats.append(
                f"{label}: with {n_v} video(s) the one-sided Wilcoxon test cannot reach alpha={alpha:g} at all "
                f"(smallest possible p = {min_raw:.3g}); the decision is 'not rejected' whatever the data. Add videos"
            )
        elif min_raw * m_family > alpha:
            caveats.append(
                f"{label}: with {n_v} video(s) and {m_family} tests in the Holm family, no Holm-adjusted p can fall "
                f"below alpha={alpha:g} (smallest possible {min(1.0, min_raw * m_family):.3g}); add videos or test fewer metrics"
            )
        sample_only = [d for d in c["metrics"] if d["significant_samples_only"]]
        if sample_only:
            desc = ", ".join(f"{display(d['metric'])} (sample-level p = {_fmt_p(d['p_wilcoxon_samples'])}, "
                             f"p_holm = {_fmt_p(d['p_holm'])})" for d in sample_only)
            caveats.append(
                f"{label}: significant only at the sample level, which treats the {c['n']} frames as independent and "
                f"ignores within-video correlation, not at the video level: {desc}; the evidence rests on few videos"
            )
        for d in c["metrics"]:
            if d["worse"]:
                caveats.append(f"{label}: {display(d['metric'])} is significantly WORSE for {c['treatment']} "
                               f"(Holm-adjusted p = {_fmt_p(d['p_holm_worse'])})")
        if c["one_sample_per_video"]:
            caveats.append(f"{label}: every video contributes one sample, so the video level and the sample level coincide")
        if c["n_psnr_capped"]:
            caveats.append(f"{label}: {c['n_psnr_capped']} sample(s) had PSNR above the ceiling (e.g. +inf for identical "
                           f"frames) and were capped before differencing")
        for d in c["metrics"]:
            rows = [r for r in seed_rows if r["treatment"] == c["treatment"] and r["control"] == c["control"]
                    and r["metric"] == d["metric"] and r["mean_diff"] != 0]
            if len({r["improves"] for r in rows}) > 1:
                desc = ", ".join(f"seed {r['seed']}: {r['mean_diff']:+.4g}" for r in rows)
                caveats.append(f"{label}, {display(d['metric'])}: seeds disagree on the direction of the effect ({desc})")
        if len(c["seeds_treatment"]) < 2:
            caveats.append(f"arm {c['treatment']} has a single test seed, so training variability is not averaged out")
    return list(dict.fromkeys(caveats))  # one arm can trigger the same caveat in several comparisons


def decision_sentence(comp_results: list[dict[str, Any]], alpha: float, m_family: int) -> str:
    """One sentence: the decision on H0 from the primary comparisons, with the secondary ones appended."""
    primary = [c for c in comp_results if c["primary"]] or comp_results
    parts = []
    rejected = [c for c in primary if c["reject_h0"]]
    for c in primary:
        sig = [d for d in c["metrics"] if d["significant"]]
        worse = [display(d["metric"]) for d in c["metrics"] if d["worse"]]
        if sig:
            ps = ", ".join(f"{display(d['metric'])} (p_holm={_fmt_p(d['p_holm'])})" for d in sig)
            text = f"{c['treatment']} improves over {c['control']} on {ps}"
        else:
            best = min(d["p_holm"] for d in c["metrics"])
            text = (f"{c['treatment']} shows no significant improvement over {c['control']} on any of "
                    f"{', '.join(display(d['metric']) for d in c['metrics'])} (smallest p_holm={_fmt_p(best)})")
        if worse:
            text += f" and is significantly worse on {', '.join(worse)}"
        parts.append(text)
    head = "H0 rejected" if rejected else "H0 not rejected"
    n_v = sorted({c["n_videos"] for c in primary})
    sentence = (f"{head} at alpha={alpha:g}: " + "; ".join(parts)
                + f" (one-sided video-level Wilcoxon on {'/'.join(map(str, n_v))} videos, Holm over {m_family} tests)")
    secondary = [c for c in comp_results if not c["primary"]]
    if secondary:
        beats = [f"{c['treatment']} vs {c['control']}" for c in secondary if c["reject_h0"]]
        sentence += f"; secondary comparisons with a significant improvement: {', '.join(beats) if beats else 'none'}"
    return sentence + "."
