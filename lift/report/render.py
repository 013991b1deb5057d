"""Writing the report folder: report.md, results.json, tables/*.csv|json, plots/*.png (all atomic)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lift.atomic import atomic_write_text, write_json
from lift.report.analysis import Analysis
from lift.report.plan import display
from lift.report.tables import slug


def write_table(df: pd.DataFrame, folder: Path, name: str) -> tuple[Path, Path]:
    base = slug(name)
    csv_path, json_path = folder / f"{base}.csv", folder / f"{base}.json"
    atomic_write_text(csv_path, df.to_csv(index=False))
    write_json(json_path, df.to_dict(orient="records"))
    return csv_path, json_path


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

def fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            return "–"
        return f"{float(x):.{digits}g}"
    return str(x)


def fmt_p(p: Any) -> str:
    if p is None or not isinstance(p, (float, int, np.floating)) or not math.isfinite(float(p)):
        return "–"
    return f"{p:.2e}" if p < 0.001 else f"{p:.4f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return (v if isinstance(v, str) else fmt(v)).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_table(comp: dict[str, Any], level: float) -> str:
    rows = []
    for d in comp["metrics"]:
        if not d.get("tested", True):
            decision = "not tested"
        else:
            decision = "**improved**" if d["significant"] else ("**WORSE**" if d["worse"] else "n.s.")
        arrow = "↑" if d["direction"] > 0 else "↓"
        rows.append([
            f"{display(d['metric'])} {arrow}", fmt(d["mean_treatment"]), fmt(d["mean_control"]), fmt(d["mean_diff"]),
            f"[{fmt(d['ci_low'])}, {fmt(d['ci_high'])}]", fmt(d["sesoi"]), fmt_p(d["p_decision"]), fmt_p(d["p_holm"]),
            fmt_p(d["p_seeds"]), fmt_p(d["p_wilcoxon"]), fmt_p(d["p_ttest"]), fmt_p(d["p_permutation"]),
            fmt_p(d["p_wilcoxon_samples"]), fmt(d["effect_dz"], 3), fmt(d["rank_biserial"], 3),
            f"{d['n_clusters_improved']}/{d['n_clusters_worse']}", "yes" if d["every_seed_agrees"] else "no",
            decision, d.get("sesoi_status", ""),
        ])
    header = ["metric", "treatment", "control", "Δ = T − C", f"{int(level * 100)}% CI (seeds random)",
              "smallest effect of interest", "p", "p adjusted (family)", "p seed-aware t", "p Wilcoxon (clusters)",
              "p t-test (clusters, seeds ignored)†", "p permutation (clusters)†", "p Wilcoxon (samples)†",
              "d_z", "r_rb", "clusters better/worse", "every seed agrees", "decision", "against the smallest effect"]
    return md_table(header, rows)


def ablation_section(ablation: dict[str, Any], family: dict[str, Any], level: float, plot: str | None) -> list[str]:
    """The ablation table: one row per factor change against the base arm (results.json's ``ablation``)."""
    where = ("the gatekept secondary family (Holm with the other secondary comparisons, tested only when H0 is "
             "rejected)" if ablation["family"] == "secondary" else "their own Holm family at full alpha (not gatekept)")
    rows = []
    for r in ablation["rows"]:
        cells = []
        for d in r["metrics"]:
            arrow = "↑" if d["direction"] > 0 else "↓"
            p = f"p={fmt_p(d['p'])}, adj. {fmt_p(d['p_adjusted'])}" if d["tested"] else "not tested"
            cells.append(f"{fmt(d['diff'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}] {arrow}; {p}")
        rows.append([r["change"], f"{r['treatment']} vs {r['control']}", r["family"], *cells, r["n_clusters"],
                     f"{len(r['seeds_treatment'])}/{len(r['seeds_control'])}", r["verdict"]])
    metrics = [d["metric"] for d in ablation["rows"][0]["metrics"]]
    header = ["change (base → changed)", "comparison (T vs C)", "family",
              *[f"{display(m)}: Δ = T − C [{int(level * 100)}% CI]; p" for m in metrics], "clusters", "seeds T/C",
              "verdict"]
    out = ["## Ablation table", "",
           f"Each factor change against the base arm `{ablation['base_arm']}`: the base arm is the treatment, the "
           f"arm with one factor changed the control (the primary comparison where the change is the window), so "
           f"Δ = base − changed and a significant row means the base level is better. The rows are tested in "
           f"{where}, with the primary's test (seeds random, clusters the unit, harm check at alpha = "
           f"{family['alpha']:g}); arrows show the better direction of each metric.", "",
           md_table(header, rows), ""]
    if plot:
        out += [f"![ablation forest]({plot})", ""]
    return out


def _shown_path(path: str) -> str:
    """A path as the reader can follow it: relative to the working directory when inside it."""
    prefix = "sqlite:///" if str(path).startswith("sqlite:///") else ""
    raw = str(path)[len(prefix):]
    try:
        rel = os.path.relpath(raw)
    except ValueError:
        return str(path)
    return prefix + (rel if not rel.startswith("..") else raw)


def render_markdown(analysis: Analysis, plots: dict[str, str]) -> str:
    """report.md: verdict, setup, each family's comparisons, figures, seeds, tuning, flow, caveats, method."""
    r = analysis.results
    out: list[str] = ["# LIFT significance report", "", f"## Verdict: {r['verdict']}", "",
                      f"**Decision.** {r['decision']}", ""]
    out += _setup_section(analysis)
    out += _family_sections(r, analysis.options.level, plots)
    out += _figure_sections(r, analysis.options.level, plots)
    out += _seed_section(analysis)
    out += _tuning_section(analysis)
    out += _flow_section(analysis)
    out += ["## Caveats", ""]
    out += [f"- {c}" for c in analysis.caveats] or ["- none detected"]
    out.append("")
    if analysis.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in analysis.notes] + [""]
    out += _method_section(r)
    out += ["## Files", "", "- `results.json`: every number above; `tables/*.csv` and `tables/*.json`: every table; "
            "`plots/*.png`: the figures.", ""]
    return "\n".join(out)


def _setup_section(analysis: Analysis) -> list[str]:
    """Inputs, data, metrics, family, design, PSNR ceiling and the test arms' means."""
    r = analysis.results
    out = ["## Setup", ""]
    srcs = r["sources"]
    out.append(f"- Inputs: {len(srcs)} per-sample table(s): " + ", ".join(f"`{_shown_path(s)}`" for s in srcs[:8])
               + (f" and {len(srcs) - 8} more" if len(srcs) > 8 else ""))
    if r["summary_sources"]:
        out.append("- Tuning summary: " + ", ".join(f"`{_shown_path(s)}`" for s in r["summary_sources"]))
    out.append(f"- Data: {', '.join(r['datasets']) or 'unknown dataset'}; test split: {r['n_test_samples']} samples "
               f"from {r['n_test_videos']} videos of {r['n_test_clusters']} independent sources (clusters)")
    out.append(f"- Metrics tested (one-sided, arrow = better): " + ", ".join(
        f"{display(m)} {'↑' if r['metric_direction'][m] > 0 else '↓'}" for m in r["metrics"]))
    fam, des = r["family"], r["design"]
    order = " → ".join(display(m) for m in fam["endpoints"])
    out.append(f"- Family (the study config's `report:` section, or the default when the study has none): alpha = {fam['alpha']:g}; primary endpoints "
               + (f"in fixed sequence {order}" if fam["procedure"] == "fixed_sequence" else f"Holm over {order}")
               + "; harm check on every endpoint; secondary family (Holm) tested only when H0 is rejected; "
               "smallest effects of interest " + ", ".join(f"{display(m)} {v:g}" for m, v in fam["sesoi"].items()))
    out.append(f"- Design: {des['n_clusters']} independent sources in the primary comparison; smallest achievable p "
               f"{des['min_achievable_p']:.3g} ({des['clusters_needed']} sources needed to reach alpha); "
               f"at least {des['min_seeds']} seeds per arm for a verdict")
    n_cap = sum(r["n_psnr_capped"].values())
    out.append(f"- PSNR ceiling {r['psnr_cap_db']:g} dB: {n_cap} test row(s) above it (+inf for identical frames) were "
               f"set to it before averaging and differencing"
               + (f" ({', '.join(f'{a}: {n}' for a, n in r['n_psnr_capped'].items())})" if n_cap else ""))
    arms = analysis.tables["arms"]
    rows = []
    for _, a in arms.iterrows():
        rows.append([a["arm"], a["seeds"], a["n"], a["n_videos"], a["n_clusters"]]
                    + [f"{fmt(a[f'{m}_mean'])} [{fmt(a[f'{m}_ci_low'])}, {fmt(a[f'{m}_ci_high'])}]" for m in r["metrics"]])
    out += ["", "Test arms (metric means over clusters of seed-averaged samples; 95% t-interval over per-cluster "
            "means):", "", md_table(["arm", "seeds", "samples", "videos", "clusters"]
                                    + [display(m) for m in r["metrics"]], rows), ""]
    info = r["study"]
    if info["missing_arms"] or info["missing_seeds"]:
        out.append("**Partial study.** Missing arms: " + (", ".join(info["missing_arms"]) or "none") + "; missing seeds: "
                   + (", ".join(f"{a}: {s}" for a, s in info["missing_seeds"].items()) or "none") + ".")
        out.append("")
    return out


def _family_sections(r: dict[str, Any], level: float, plots: dict[str, str]) -> list[str]:
    """One section per family (primary, secondary, ablation, sanity) with each comparison's table."""
    out: list[str] = []
    titles = {"primary": "Primary family (decides H0)", "secondary": "Secondary family (gatekept, Holm)",
              "ablation": "Ablation family (its own Holm family, not gatekept)",
              "sanity": "Sanity check (window 3 must beat blending)",
              "published": "Fine-tuning check (window 3 must not fall below the published RIFE)"}
    for family in ("primary", "secondary", "ablation", "sanity", "published"):
        comps = [c for c in r["comparisons"] if c["family"] == family]
        if not comps:
            continue
        out += [f"## {titles[family]}", ""]
        for comp in comps:
            label = f"{comp['treatment']} vs {comp['control']}"
            if family in ("sanity", "published"):
                status = "passed" if comp.get(f"{family}_ok") else "FAILED"
            elif family == "primary":
                status = "H0 rejected" if comp["reject_h0"] else "H0 not rejected"
            else:
                status = ("significant" if comp["reject_h0"] else "not significant") if comp["metrics"][0].get("tested") \
                    else "not tested"
            out += [f"### {label}: {status}", "",
                    f"{comp['n']} paired samples from {comp['n_videos']} videos of {comp['n_clusters']} independent "
                    f"sources; seeds {comp['seeds_treatment']} vs {comp['seeds_control']}.", "",
                    comparison_table(comp, level), ""]
            for key in (f"differences__{label}", f"per_cluster__{label}"):
                if key in plots:
                    out += [f"![{key}]({plots[key]})", ""]
    out += ["Δ and its CI are in the metric's units (treatment − control), over clusters; d_z and r_rb "
            "(matched-pairs rank-biserial) on the per-cluster differences d_c, oriented so that positive means the "
            "treatment is better. p is the decision's (the larger of the seed-aware t-test and the Wilcoxon test on "
            "the d_c); 'p adjusted' is its fixed-sequence or Holm value in its family. † Shown for reference only, never "
            "used for the decision: the t-test and permutation test on the d_c ignore the seed variance, the "
            "sample-level Wilcoxon treats every frame as independent.", ""]
    return out


def _figure_sections(r: dict[str, Any], level: float, plots: dict[str, str]) -> list[str]:
    """The ablation table, the effects overview, the frames panel and the metric-vs-window plot."""
    out: list[str] = []
    if r.get("ablation"):
        out += ablation_section(r["ablation"], r["family"], level, plots.get("ablation_forest"))
    if "forest" in plots:
        out += ["## Effects overview", "", f"![forest]({plots['forest']})", ""]
    out += ["## Frames", ""]
    if "frames" in plots:
        out += ["Ground truth, control, treatment and their absolute errors, for the test samples (among the fixed "
                "subset whose predictions the confirm stage keeps) where the primary comparison's arms differ most "
                "and least on the first endpoint:", "", f"![frames panel]({plots['frames']})", ""]
    else:
        out += ["No frames panel: no confirm run of both primary arms kept predicted frames (`frames/index.json` "
                "beside its samples.parquet), or plots were not written.", ""]
    if "metric_vs_window" in plots:
        out += ["## Metric vs window and offset", "", f"![metric vs window]({plots['metric_vs_window']})", ""]
    return out


def _seed_section(analysis: Analysis) -> list[str]:
    """The spread over seeds and the per-seed differences."""
    out = ["## Seeds", ""]
    spread = analysis.tables["seed_spread"]
    multi = spread[spread["n_seeds"] > 1]
    if multi.empty:
        out += ["Every arm has one test seed: the seed spread cannot be estimated.", ""]
    else:
        out += [md_table(["arm", "metric", "seeds", "mean of seed means", "std across seeds", "min", "max"],
                         [[s["arm"], display(s["metric"]), s["n_seeds"], s["mean"], s["std"], s["min"], s["max"]]
                          for _, s in multi.iterrows()]), ""]
    sd = analysis.tables["seed_differences"]
    if not sd.empty:
        out += ["Per-seed mean differences over clusters (T − C; seeds of the same number are paired when both arms "
                "have them; `T1` = treatment seed 1 against the control's seed average). \"Every seed agrees\" in "
                "the tables above: every per-seed difference points the same way.", "",
                md_table(["comparison", "metric", "seed", "Δ", "treatment better"],
                         [[f"{x['treatment']} vs {x['control']}", display(x["metric"]), x["seed"], x["mean_diff"],
                           x["improves"]] for _, x in sd.iterrows()]), ""]
    return out


def _tuning_section(analysis: Analysis) -> list[str]:
    """Trials per arm and the best configuration (validation split, never tested)."""
    study = analysis.study
    out = ["## Tuning (Optuna + ASHA; validation split, summarised, never tested)", ""]
    tuning = analysis.tables["tuning"]
    if tuning.empty:
        out += ["No tuning summary (`study_summary.json`) and no validation rows were found.", ""]
    else:
        out += [md_table(["arm", "trials", "failed", "stopped early (ASHA)", "best trial", "best val PSNR",
                          "best config", "from"],
                         [[t["arm"], t["n_trials"], t["n_failed"], t["n_stopped_early"], t["best_trial"],
                           t["best_val_psnr"],
                           f"`{t['best_config']}`" if t["best_config"] else "–", t["source"]]
                          for _, t in tuning.iterrows()]), ""]
        if study.summary.get("optuna_storage"):
            out += [f"Optuna storage: `{_shown_path(study.summary['optuna_storage'])}`", ""]
    return out


def _flow_section(analysis: Analysis) -> list[str]:
    """Flow metrics per arm, summarised only."""
    study = analysis.study
    out = ["## Flow quality", ""]
    if "flow" in analysis.tables:
        fm = study.flow_metrics
        flow = analysis.tables["flow"]
        flow = flow[flow[[f"{m}_mean" for m in fm]].notna().any(axis=1)]
        out += [md_table(["arm", "samples"] + [f"{display(m)} ↓" for m in fm],
                         [[f["arm"], f["n"]] + [f"{fmt(f[f'{m}_mean'])} [{fmt(f[f'{m}_ci_low'])}, {fmt(f[f'{m}_ci_high'])}]"
                                                for m in fm] for _, f in flow.iterrows()]),
                "", "Flow metrics are summarised (mean, 95% t-interval over clusters), not part of the H0 test.", ""]
    else:
        out += ["No flow columns (epe, warp_error) in the test rows.", ""]
    return out


def _method_section(r: dict[str, Any]) -> list[str]:
    """How the report tests (STATISTICS.md, version 2), with this report's PSNR ceiling."""
    return ["## Method (STATISTICS.md, version 2)", "",
            "- Only `split=test` rows are tested; `split=val` rows (tuning) are summarised. Arms are paired by "
            "`sample_id`.",
            "- Unit of analysis: the independent source (`cluster_id`: UCF-101 group, the clip of segments, X4K scene, "
            "Vimeo sequence folder, synthetic source). d_c = mean over the cluster's samples of the seed-averaged "
            "(T − C), times the metric's direction, so that positive = better.",
            "- Seeds are random: SE² = s²(d_c)/n + V_T + V_C, where V_arm is the arm's seed variance over its number "
            "of seeds (variance of its per-seed means less the seed-by-cluster part, at least 0); Welch–Satterthwaite "
            "degrees of freedom; the interval is the t interval with them. A verdict needs at least 3 seeds per arm.",
            "- The decision's p of a metric is the larger of that t-test and the one-sided Wilcoxon signed-rank test "
            "on the d_c (`scipy.stats.wilcoxon`, exact up to 50 clusters), which sets the design's floor 2^-n. "
            "Significantly worse: the same test in the other direction at alpha.",
            "- Primary family: the endpoints in the study config's order, in fixed sequence (each tested at alpha "
            "only when the one before it was rejected) or Holm; H0 is rejected when the first endpoint (fixed "
            "sequence) or any endpoint (Holm) is rejected and no endpoint is significantly worse. Secondary family: "
            "Holm over its (comparison, endpoint) tests, only when H0 was rejected. Sanity: window 3's mean beats "
            "blend's on the first endpoint, else the verdict is 'inconclusive'.",
            "- Calibration of this decision: `studies/simulate_calibration.py` (README).",
            f"- Infinite PSNR (identical frames): capped at {r['psnr_cap_db']:g} dB when the tables are combined, "
            "before any mean or difference (the one place it is handled).", ""]


def write_report(analysis: Analysis, out_dir: Path, *, make_plots: bool = True) -> dict[str, Path]:
    """Write every output of the report into ``out_dir``; returns the main paths."""
    from lift.report import plots as P  # matplotlib is only imported when plots are written

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_dir, plots_dir = out_dir / "tables", out_dir / "plots"
    written: dict[str, Path] = {}
    for name, df in analysis.tables.items():
        write_table(df, tables_dir, name)
    plot_paths: dict[str, str] = {}
    if make_plots:
        comps = analysis.results["comparisons"]
        for comp in comps:
            label = f"{comp['treatment']} vs {comp['control']}"
            pv = analysis.per_cluster[label]
            kinds = [("differences", P.plot_differences)]
            if comp["primary"]:  # per-cluster bars against a baseline add little and cost time
                kinds.append(("per_cluster", P.plot_per_cluster))
            for kind, fn in kinds:
                path = fn(pv, comp, plots_dir / f"{kind}__{slug(label)}.png")
                plot_paths[f"{kind}__{label}"] = path.relative_to(out_dir).as_posix()
        tested = [c for c in comps if c["family"] not in ("sanity", "published")]
        plot_paths["forest"] = P.plot_forest(tested, plots_dir / "forest.png", analysis.options.level) \
            .relative_to(out_dir).as_posix()
        ablation = analysis.results.get("ablation")
        if ablation:
            by_pair = {(c["treatment"], c["control"]): c for c in comps}
            rows = ablation["rows"]
            plot_paths["ablation_forest"] = P.plot_forest(
                [by_pair[(r["treatment"], r["control"])] for r in rows], plots_dir / "ablation_forest.png",
                analysis.options.level, labels=[f"{r['change']} ({r['family']})" for r in rows],
                title=f"Ablation: each change against the base arm (improvement of T over C; green: significant "
                      f"in its family; red: significantly worse)").relative_to(out_dir).as_posix()
        primary = [c for c in comps if c["family"] == "primary"]
        if primary:
            from lift.report.frames import write_frames_panel  # matplotlib, as above: only with plots

            panel, chosen = write_frames_panel(analysis.study, primary[0], plots_dir / "frames_panel.png")
            if panel is not None:
                plot_paths["frames"] = panel.relative_to(out_dir).as_posix()
                write_table(chosen, tables_dir, "frames_panel")
        mvw = P.plot_metric_vs_window(analysis.tables["arms"], analysis.results["metrics"], plots_dir / "metric_vs_window.png")
        if mvw is not None:
            plot_paths["metric_vs_window"] = mvw.relative_to(out_dir).as_posix()
    analysis.results["plots"] = plot_paths
    written["results"] = out_dir / "results.json"
    write_json(written["results"], analysis.results)
    written["report"] = out_dir / "report.md"
    atomic_write_text(written["report"], render_markdown(analysis, plot_paths))
    return written
