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
* Fine-tuning check: window 3 against ``baseline=rife_hd`` where that arm exists (decision.not_below_published;
  shown, with a caveat when it fails, not used in the verdict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lift.arms import format_value
from lift.report import decision, stats
from lift.report.plan import (
    AblationStep,
    Comparison,
    ReportOptions,
    ablation_family,
    ablation_steps,
    display,
    plan_comparisons,
    primary_selectors,
)
from lift.report.summaries import arm_summary, completeness, seed_spread, tuning_table, validation_table
from lift.report.tables import (
    ReportError,
    Study,
    arm_matches,
    arm_window,
    is_baseline,
    pair_arms,
    parse_arm,
    seed_average,
    seed_cluster_means,
)


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
    """The gatekept secondary family (treatment vs each baseline, each other offset arm vs window 3), the
    sanity check (window 3 vs blend) and the fine-tuning check (window 3 vs the published RIFE)."""
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
            if arm_matches("baseline=rife_hd", arm):
                out.append(Comparison(ctrl, arm, "published"))
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
        same = next((c for c in planned if {c.treatment, c.control} == pair
                     and c.family not in ("sanity", "published")), None)
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
    comparisons, steps, step_comparisons, notes = _plan(study, options)
    notes = list(study.notes) + notes + family_notes
    info, caveats = completeness(study)
    tuning, tuning_caveats = tuning_table(study)
    caveats += tuning_caveats
    metrics = list(family.endpoints)
    comps = [_comparison(study, comp, metrics, options, family, i) for i, comp in enumerate(comparisons)]
    verdict, reason, ablation = _decide(comps, steps, step_comparisons, family, options.level)
    per_cluster, seed_rows = _detach_internals(comps)
    prim = [c for c in comps if c["family"] == "primary"]
    n_clusters = min((c["n_clusters"] for c in prim), default=0)
    design = {
        "n_clusters": n_clusters,
        "min_achievable_p": decision.min_achievable_p(n_clusters, family.procedure, len(metrics)),
        "clusters_needed": decision.clusters_needed(family.alpha, family.procedure, len(metrics)),
        "min_seeds": decision.MIN_SEEDS,
    }
    caveats += _comparison_caveats(comps, seed_rows, family.alpha, design)
    spread, spread_summary = seed_spread(study.test, metrics)
    tables = _tables(study, options, comps, per_cluster, seed_rows, spread, spread_summary, tuning, ablation)
    results = {
        "verdict": verdict,
        "verdict_reason": reason,
        "decision": decision_sentence(comps, verdict, reason, family),
        "reject_h0": bool(verdict == decision.VERDICTS[0]),
        "alpha": float(family.alpha),
        "family": family.to_dict(),
        "design": design,
        "comparisons": comps,
        "ablation": {"base_arm": study.summary.get("base_arm"), "family": ablation_family(study, options),
                     "rows": ablation} if ablation else None,
        **_method(study, options, family, metrics),
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


def _plan(study: Study, options: ReportOptions) -> tuple[list[Comparison], list[AblationStep], list[Comparison],
                                                         list[str]]:
    """Every comparison to run (primary, secondary, sanity, ablation), the ablation steps and the notes
    on how the arms were chosen."""
    selected, selector_notes = primary_selectors(study, options)
    planned, notes = plan_comparisons(study, selected)
    primary = [c for c in planned if c.primary]
    comparisons = primary + _secondary_and_sanity(study, primary, [c for c in planned if not c.primary])
    steps = ablation_steps(study)
    step_comparisons = _ablation_comparisons(steps, comparisons, ablation_family(study, options))
    comparisons += [c for c in step_comparisons if c not in comparisons]
    return comparisons, steps, step_comparisons, selector_notes + notes


def _decide(comps: list[dict[str, Any]], steps: Sequence[AblationStep], step_comparisons: Sequence[Comparison],
            family: decision.Family, level: float) -> tuple[str, str, list[dict[str, Any]]]:
    """The verdict and its reason, then the gatekept secondary family, the ablation rows and the sanity
    check, in place on `comps`; returns (verdict, reason, ablation rows)."""
    prim = [c for c in comps if c["family"] == "primary"]
    sanity = next((c for c in comps if c["family"] == "sanity"), None)
    verdict, reason = _combine_verdicts(_decide_primary(prim, family, sanity, level))
    _decide_secondary([c for c in comps if c["family"] == "secondary"], verdict == decision.VERDICTS[0],
                      family.alpha)
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
    for check in (c for c in comps if c["family"] == "published"):
        _decide_secondary([check], True, family.alpha)  # shown, not used in the verdict
        check["published_ok"] = decision.not_below_published(check["metrics"][0])
        for d in check["metrics"]:
            d["sesoi_status"] = "fine-tuning check (not a test of H0)"
    return verdict, reason, ablation


def _detach_internals(comps: list[dict[str, Any]]) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Take the per-cluster tables and per-seed rows out of the comparisons (results.json keeps neither),
    and drop their working arrays."""
    per_cluster: dict[str, pd.DataFrame] = {}
    seed_rows: list[dict[str, Any]] = []
    for c in comps:
        label = f"{c['treatment']} vs {c['control']}"
        per_cluster[label] = c.pop("_per_cluster")
        seed_rows += c.pop("_seed_rows")
        for key in ("_tests", "_t", "_c"):
            c.pop(key)
        c.setdefault("reject_h0", False)
    return per_cluster, seed_rows


def _tables(study: Study, options: ReportOptions, comps: list[dict[str, Any]], per_cluster: dict[str, pd.DataFrame],
            seed_rows: list[dict[str, Any]], spread: pd.DataFrame, spread_summary: list[dict[str, Any]],
            tuning: pd.DataFrame, ablation: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The report's named tables (tables/*.csv|json)."""
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
    return tables


def _method(study: Study, options: ReportOptions, family: decision.Family, metrics: list[str]) -> dict[str, Any]:
    """results.json's description of the test, its settings and the test data."""
    test = study.test
    return {
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
        "datasets": sorted({str(s).split("/", 1)[0] for s in test["sample_id"].unique() if "/" in str(s)}),
        "n_test_samples": int(test["sample_id"].nunique()),
        "n_test_videos": int(test["video_id"].nunique()),
        "n_test_clusters": int(test["cluster_id"].nunique()),
    }


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
        if c["family"] == "published" and c.get("published_ok") is False:
            m = c["metrics"][0]
            caveats.append(f"fine-tuning check failed: {c['treatment']} falls below the published model {c['control']} "
                           f"on {display(m['metric'])} ({m['mean_diff']:+.3g}); fine-tuning made RIFE worse")
        sample_only = [d for d in c["metrics"] if d.get("tested") and not d["significant"]
                       and d["p_wilcoxon_samples"] < alpha]
        if sample_only and c["family"] not in ("sanity", "published"):
            desc = ", ".join(f"{display(d['metric'])} (sample-level p = {_fmt_p(d['p_wilcoxon_samples'])})"
                             for d in sample_only)
            caveats.append(f"{label}: significant only at the sample level, which treats the {c['n']} frames as "
                           f"independent, not over the {c['n_clusters']} independent sources: {desc}")
        for d in c["metrics"]:
            if d["worse"] and c["family"] not in ("sanity", "published"):
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
