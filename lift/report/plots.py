"""PNG figures of the report (matplotlib, Agg backend: no display needed).

All effect plots show *improvements* (treatment - control, multiplied by the metric's direction)
so that right of zero always means "the treatment is better", whatever the metric.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines; never ask for a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lift.atomic import atomic_path
from lift.report.analysis import display  # noqa: E402


# Matplotlib 3.10 replaced boxplot's `vert=False` by `orientation="horizontal"` (and deprecated the former).
_HORIZONTAL = ({"orientation": "horizontal"} if "orientation" in inspect.signature(plt.Axes.boxplot).parameters
               else {"vert": False})


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG atomically (lift.atomic) and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_differences(per_cluster: pd.DataFrame, comparison: dict[str, Any], path: Path) -> Path:
    """Distribution of the per-cluster improvements d_c, one panel per metric (box + every cluster)."""
    metrics = [d["metric"] for d in comparison["metrics"]]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7, 1.0 + 1.3 * len(metrics)), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, d in zip(axes[:, 0], comparison["metrics"]):
        vals = per_cluster[f"{d['metric']}_improvement"].to_numpy(dtype=float)
        ax.boxplot(vals, widths=0.5, showfliers=False, **_HORIZONTAL)
        ax.scatter(vals, 1 + rng.uniform(-0.15, 0.15, len(vals)), s=12, alpha=0.7, color="tab:blue", zorder=3)
        ax.axvline(0.0, color="black", lw=0.8, ls="--")
        ax.set_yticks([])
        verdict = "significant" if d["significant"] else ("worse" if d["worse"] else "n.s.")
        ax.set_title(f"{display(d['metric'])}: p={d['p_decision']:.3g}, adjusted {d['p_holm']:.3g} ({verdict})",
                     fontsize=9)
    axes[-1, 0].set_xlabel("per-cluster improvement d_c (treatment better →)")
    fig.suptitle(f"{comparison['treatment']} vs {comparison['control']}: {comparison['n_clusters']} independent sources",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_cluster(per_cluster: pd.DataFrame, comparison: dict[str, Any], path: Path) -> Path:
    """Per-cluster effect for each metric, clusters sorted by the first metric's improvement."""
    metrics = [d["metric"] for d in comparison["metrics"]]
    pv = per_cluster.sort_values(f"{metrics[0]}_improvement").reset_index(drop=True)
    n = len(pv)
    height = min(2.0 + 0.22 * n, 30.0)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1.5, height), squeeze=False, sharey=True)
    y = np.arange(n)
    for ax, m in zip(axes[0], metrics):
        vals = pv[f"{m}_improvement"].to_numpy(dtype=float)
        colors = np.where(vals > 0, "tab:green", np.where(vals < 0, "tab:red", "grey"))
        ax.barh(y, vals, color=colors, height=0.7)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_title(display(m), fontsize=9)
        ax.set_xlabel("improvement →", fontsize=8)
        # SSIM/LPIPS effects are ~1e-4: few ticks with a shared offset stay readable.
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        ax.tick_params(axis="x", labelsize=7)
    if n <= 60:
        axes[0, 0].set_yticks(y)
        axes[0, 0].set_yticklabels([f"{v} ({c})" for v, c in zip(pv["cluster_id"], pv["n_samples"])], fontsize=6)
    else:
        axes[0, 0].set_yticks([])
        axes[0, 0].set_ylabel(f"{n} clusters (sorted)")
    fig.suptitle(f"Per-cluster effects: {comparison['treatment']} vs {comparison['control']} "
                 f"(label: cluster (samples))", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_forest(comparisons: Sequence[dict[str, Any]], path: Path, level: float = 0.95,
                labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Mean improvement with its seed-aware CI and the smallest effect of interest, one panel per metric,
    one row per comparison (labelled ``treatment vs control`` unless ``labels`` are given)."""
    metrics = [d["metric"] for d in comparisons[0]["metrics"]]
    labels = list(labels) if labels is not None else [f"{c['treatment']} vs {c['control']}" for c in comparisons]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics) + 2.5, 1.2 + 0.45 * len(comparisons)),
                             squeeze=False, sharey=True)
    y = np.arange(len(comparisons))[::-1]
    for ax, m in zip(axes[0], metrics):
        for yi, c in zip(y, comparisons):
            d = next(x for x in c["metrics"] if x["metric"] == m)
            sign = d["direction"]
            est = d["mean_diff"] * sign
            lo, hi = sorted((d["ci_low"] * sign, d["ci_high"] * sign))
            color = "tab:green" if d["significant"] else ("tab:red" if d["worse"] else "tab:grey")
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [yi, yi], color=color, lw=2)
            ax.plot(est, yi, "o", color=color)
        ax.axvline(0.0, color="black", lw=0.8, ls="--")
        sesoi = comparisons[0]["metrics"][metrics.index(m)].get("sesoi")
        if sesoi:
            ax.axvline(sesoi, color="tab:orange", lw=0.8, ls=":")
        ax.set_title(display(m), fontsize=9)
        ax.set_xlabel(f"mean improvement, {int(level * 100)}% CI →", fontsize=8)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels(labels, fontsize=7)
    fig.suptitle(title or "Effects (green: significant in its family; red: significantly worse; orange: smallest "
                 "effect of interest)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_metric_vs_window(arms: pd.DataFrame, metrics: Sequence[str], path: Path) -> Path | None:
    """Test mean of each metric against the window, one line per temporal offset; baselines as dashed lines.

    window=3 has no references, so its point starts every offset's line.
    """
    model = arms[(~arms["baseline"]) & arms["window"].notna()]
    if model.empty:
        return None
    baselines = arms[arms["baseline"]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.4), squeeze=False)
    three = model[model["window"] == 3]
    offsets = sorted({int(o) for o in model["offset"].dropna()}) or [None]
    for ax, m in zip(axes[0], metrics):
        for k, off in enumerate(offsets):
            sub = model[(model["offset"] == off) & (model["window"] != 3)] if off is not None else model[model["window"] != 3]
            sub = pd.concat([three, sub]).sort_values("window")
            if sub.empty:
                continue
            err = np.vstack([sub[f"{m}_mean"] - sub[f"{m}_ci_low"], sub[f"{m}_ci_high"] - sub[f"{m}_mean"]])
            err = np.where(np.isfinite(err), err, 0.0)
            ax.errorbar(sub["window"].astype(float) + 0.08 * k, sub[f"{m}_mean"], yerr=err, marker="o", capsize=3,
                        label=f"offset={off}" if off is not None else "model")
        for j, (_, b) in enumerate(baselines.iterrows()):
            ax.axhline(b[f"{m}_mean"], ls="--", lw=1, color=f"C{len(offsets) + j}", label=b["arm"])
        ax.set_xlabel("window (frames incl. target)")
        ax.set_title(f"{display(m)} (test, 95% CI over clusters)", fontsize=9)
        ax.set_xticks(sorted({int(w) for w in model["window"]}))
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
