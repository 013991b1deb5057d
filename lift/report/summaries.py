"""The report's descriptive tables, never tested: study completeness, tuning, validation, per-arm
means with t intervals, and the spread over seeds."""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lift.report import stats
from lift.report.tables import (
    Study,
    arm_offset,
    arm_sort_key,
    arm_window,
    is_baseline,
    seed_average,
    seed_table,
    sorted_arms,
)


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


def seed_spread(test: pd.DataFrame, metrics: Sequence[str]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Per arm and seed the metrics' means (:func:`~lift.report.tables.seed_table`), and per arm and
    metric their spread over seeds (n, mean, std, min, max)."""
    spread = seed_table(test, metrics)
    summary = []
    for arm, g in spread.groupby("arm", sort=False):
        for m in metrics:
            vals = g[m].to_numpy(dtype=float)
            summary.append({"arm": arm, "metric": m, "n_seeds": int(len(vals)), "mean": float(vals.mean()),
                            "std": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                            "min": float(vals.min()), "max": float(vals.max())})
    return spread, summary
