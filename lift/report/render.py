"""Writing the report folder: report.md, results.json, tables/*.csv|json, plots/*.png (all atomic)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lift.atomic import atomic_write_text
from lift.report.analysis import Analysis, display
from lift.report.tables import slug


def json_safe(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(Path(path), json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


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
        decision = "**improved**" if d["significant"] else ("**WORSE**" if d["worse"] else "n.s.")
        arrow = "↑" if d["direction"] > 0 else "↓"
        rows.append([
            f"{display(d['metric'])} {arrow}", fmt(d["mean_treatment"]), fmt(d["mean_control"]), fmt(d["mean_diff"]),
            f"[{fmt(d['ci_low'])}, {fmt(d['ci_high'])}]", fmt_p(d["p_wilcoxon"]), fmt_p(d["p_ttest"]),
            fmt_p(d["p_permutation"]), fmt_p(d["p_holm"]), fmt_p(d["p_wilcoxon_samples"]), fmt(d["effect_dz"], 3),
            fmt(d["rank_biserial"], 3), f"{d['n_videos_improved']}/{d['n_videos_worse']}", decision,
        ])
    header = ["metric", "treatment", "control", "Δ = T − C", f"{int(level * 100)}% CI (video bootstrap)",
              "p Wilcoxon (videos)", "p t-test", "p permutation", "p Holm", "p Wilcoxon (samples)†",
              "d_z", "r_rb", "videos better/worse", "decision"]
    return md_table(header, rows)


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
    r = analysis.results
    opts = analysis.options
    study = analysis.study
    out: list[str] = ["# LIFT significance report", "", f"**Decision.** {r['decision']}", ""]

    out += ["## Setup", ""]
    srcs = r["sources"]
    out.append(f"- Inputs: {len(srcs)} per-sample table(s): " + ", ".join(f"`{_shown_path(s)}`" for s in srcs[:8])
               + (f" and {len(srcs) - 8} more" if len(srcs) > 8 else ""))
    if r["summary_sources"]:
        out.append("- Tuning summary: " + ", ".join(f"`{_shown_path(s)}`" for s in r["summary_sources"]))
    out.append(f"- Data: {', '.join(r['datasets']) or 'unknown dataset'}; test split: {r['n_test_samples']} samples "
               f"from {r['n_test_videos']} videos")
    out.append(f"- Metrics tested (one-sided, arrow = better): " + ", ".join(
        f"{display(m)} {'↑' if r['metric_direction'][m] > 0 else '↓'}" for m in r["metrics"]))
    out.append(f"- alpha = {r['alpha']:g}; Holm-Bonferroni over {r['holm_family_size']} tests "
               f"({len(r['comparisons'])} comparison(s) × {len(r['metrics'])} metric(s))")
    n_cap = sum(r["n_psnr_capped"].values())
    out.append(f"- PSNR ceiling {r['psnr_cap_db']:g} dB: {n_cap} test row(s) above it (+inf for identical frames) were "
               f"set to it before averaging and differencing"
               + (f" ({', '.join(f'{a}: {n}' for a, n in r['n_psnr_capped'].items())})" if n_cap else ""))
    arms = analysis.tables["arms"]
    rows = []
    for _, a in arms.iterrows():
        rows.append([a["arm"], a["seeds"], a["n"], a["n_videos"]]
                    + [f"{fmt(a[f'{m}_mean'])} [{fmt(a[f'{m}_ci_low'])}, {fmt(a[f'{m}_ci_high'])}]" for m in r["metrics"]])
    out += ["", "Test arms (metric means over seed-averaged samples; 95% t-interval over per-video means):", "",
            md_table(["arm", "seeds", "samples", "videos"] + [display(m) for m in r["metrics"]], rows), ""]
    info = r["study"]
    if info["missing_arms"] or info["missing_seeds"]:
        out.append("**Partial study.** Missing arms: " + (", ".join(info["missing_arms"]) or "none") + "; missing seeds: "
                   + (", ".join(f"{a}: {s}" for a, s in info["missing_seeds"].items()) or "none") + ".")
        out.append("")

    out += ["## Comparisons", ""]
    for comp in r["comparisons"]:
        label = f"{comp['treatment']} vs {comp['control']}"
        kind = "primary" if comp["primary"] else "secondary"
        out += [f"### {label} ({kind})", "",
                f"{comp['n']} paired samples from {comp['n_videos']} videos; seeds {comp['seeds_treatment']} vs "
                f"{comp['seeds_control']}. H0 for this comparison: "
                f"**{'rejected' if comp['reject_h0'] else 'not rejected'}**.", "",
                comparison_table(comp, opts.level), ""]
        for key in (f"differences__{label}", f"per_video__{label}"):
            if key in plots:
                out += [f"![{key}]({plots[key]})", ""]
    out += ["Δ and its CI are in the metric's units (treatment − control); d_z (Cohen's, on per-video differences) and "
            "r_rb (matched-pairs rank-biserial) are oriented so that positive means the treatment is better. "
            "† The sample-level Wilcoxon treats every frame as independent and ignores within-video correlation: "
            "shown for reference only, never used for the decision.", ""]
    if "forest" in plots:
        out += ["## Effects overview", "", f"![forest]({plots['forest']})", ""]
    if "metric_vs_window" in plots:
        out += ["## Metric vs window and offset", "", f"![metric vs window]({plots['metric_vs_window']})", ""]

    out += ["## Seeds", ""]
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
        out += ["Per-seed mean differences (T − C; `T1` = treatment seed 1 against the control's seed average):", "",
                md_table(["comparison", "metric", "seed", "Δ", "treatment better"],
                         [[f"{x['treatment']} vs {x['control']}", display(x["metric"]), x["seed"], x["mean_diff"],
                           x["improves"]] for _, x in sd.iterrows()]), ""]

    out += ["## Tuning (Optuna + ASHA; validation split, summarised, never tested)", ""]
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

    out += ["## Flow quality", ""]
    if "flow" in analysis.tables:
        fm = study.flow_metrics
        flow = analysis.tables["flow"]
        flow = flow[flow[[f"{m}_mean" for m in fm]].notna().any(axis=1)]
        out += [md_table(["arm", "samples"] + [f"{display(m)} ↓" for m in fm],
                         [[f["arm"], f["n"]] + [f"{fmt(f[f'{m}_mean'])} [{fmt(f[f'{m}_ci_low'])}, {fmt(f[f'{m}_ci_high'])}]"
                                                for m in fm] for _, f in flow.iterrows()]),
                "", "Flow metrics are summarised (mean, 95% t-interval over videos), not part of the H0 test.", ""]
    else:
        out += ["No flow columns (epe, warp_error) in the test rows.", ""]

    out += ["## Caveats", ""]
    out += [f"- {c}" for c in analysis.caveats] or ["- none detected"]
    out.append("")
    if analysis.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in analysis.notes] + [""]

    out += ["## Method", "",
            "- Only `split=test` rows are tested; `split=val` rows (tuning) are summarised. Arms are paired by "
            "`sample_id`; a sample's value for a multi-seed arm is the mean over its seeds.",
            "- Unit of analysis: the video. d_v = mean over the video's samples of (T − C), multiplied by the metric's "
            "direction so that positive = better.",
            "- Primary: one-sided Wilcoxon signed-rank on the d_v (`scipy.stats.wilcoxon(d, alternative='greater')`, "
            "default method; zero differences dropped). Also on the d_v: one-sample t-test and a sign-flip permutation "
            f"test of the mean (exact up to 16 videos, else {opts.n_permutations} seeded flips).",
            f"- Δ CI: studentized bootstrap (bootstrap-t with a cluster-robust standard error) resampling whole videos "
            f"({opts.n_boot} replicates, seed {opts.seed}); the percentile interval under-covers with few videos.",
            "- Effect sizes on the d_v: Cohen's d_z = mean / SD; matched-pairs rank-biserial r = (R+ − R−) / (R+ + R−).",
            "- Holm-Bonferroni over every (comparison, metric) primary p-value. A metric is *improved* when its p_holm < "
            "alpha, *worse* when the opposite one-sided test, Holm-adjusted the same way, is < alpha. The headline H0 "
            "is decided by the primary comparison(s) (treatment vs window=3 or the given --control); baseline "
            "comparisons are reported and counted in the Holm family but do not decide it.",
            f"- PSNR values above {r['psnr_cap_db']:g} dB (including +inf) are capped at that value.", ""]

    out += ["## Files", "", "- `results.json`: every number above; `tables/*.csv` and `tables/*.json`: every table; "
            "`plots/*.png`: the figures.", ""]
    return "\n".join(out)


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
            pv = analysis.per_video[label]
            kinds = [("differences", P.plot_differences)]
            if comp["primary"]:  # per-video bars against a baseline add little and cost time
                kinds.append(("per_video", P.plot_per_video))
            for kind, fn in kinds:
                path = fn(pv, comp, plots_dir / f"{kind}__{slug(label)}.png")
                plot_paths[f"{kind}__{label}"] = path.relative_to(out_dir).as_posix()
        plot_paths["forest"] = P.plot_forest(comps, plots_dir / "forest.png", analysis.options.level) \
            .relative_to(out_dir).as_posix()
        mvw = P.plot_metric_vs_window(analysis.tables["arms"], analysis.results["metrics"], plots_dir / "metric_vs_window.png")
        if mvw is not None:
            plot_paths["metric_vs_window"] = mvw.relative_to(out_dir).as_posix()
    analysis.results["plots"] = plot_paths
    written["results"] = out_dir / "results.json"
    write_json(written["results"], analysis.results)
    written["report"] = out_dir / "report.md"
    atomic_write_text(written["report"], render_markdown(analysis, plot_paths))
    return written
