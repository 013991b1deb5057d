"""Loading and validating the per-sample evaluation tables (ARCHITECTURE.md) and shaping them for tests.

Only files are read: no Ray, no running study. Every refusal raises :class:`ReportError` with a
message that names the file (or arms) and what was expected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from lift.arms import ArmNameError, parse_value, split_key
from lift.report.stats import METRIC_DIRECTION, PSNR_CEILING_DB, cap_psnr

TABLE_NAMES = ("samples.parquet", "samples.csv")
SUMMARY_NAME = "study_summary.json"
ID_COLUMNS = ("sample_id", "video_id", "cluster_id", "target_index", "timestep", "arm", "split", "seed", "trial_id")
PRIMARY_METRICS = ("psnr", "ssim", "lpips")
FLOW_METRICS = ("epe", "epe_gt1", "epe_gt3", "warp_error")
TEST_SPLIT = "test"
VAL_SPLIT = "val"


class ReportError(ValueError):
    """The report's input is missing, malformed or inconsistent; the message says which file/arm and why."""


# ---------------------------------------------------------------------------------------------
# Arms
# ---------------------------------------------------------------------------------------------

def parse_arm(arm: str, where: str = "") -> dict[str, str]:
    """``"window=15,offset=2"`` -> ``{"window": "15", "offset": "2"}`` (:func:`lift.arms.split_key`)."""
    try:
        return split_key(arm)
    except ArmNameError as err:
        raise ReportError(f"{where}: {err}" if where else str(err)) from None


def arm_matches(selector: str, arm: str) -> bool:
    """True when every key=value pair of ``selector`` is one of ``arm``'s pairs."""
    sel = parse_arm(selector, "selector")
    pairs = parse_arm(arm)
    return all(pairs.get(k) == v for k, v in sel.items())


def is_baseline(arm: str) -> bool:
    return "baseline" in parse_arm(arm)


def _arm_int(arm: str, name: str) -> int | None:
    """The integer value of `name` in the arm's name (lift.arms.parse_value), None if absent or not an integer."""
    text = parse_arm(arm).get(name)
    value = None if text is None else parse_value(text)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def arm_window(arm: str) -> int | None:
    return _arm_int(arm, "window")


def arm_offset(arm: str) -> int | None:
    return _arm_int(arm, "offset")


def arm_sort_key(arm: str) -> tuple:
    """Model arms by window then offset, then baselines, then anything else by name."""
    window, offset = arm_window(arm), arm_offset(arm)
    if is_baseline(arm):
        return (1, 0, 0, arm)
    if window is None:
        return (2, 0, 0, arm)
    return (0, window, offset if offset is not None else 0, arm)


def sorted_arms(arms: Iterable[str]) -> list[str]:
    return sorted(set(arms), key=arm_sort_key)


def slug(text: str) -> str:
    """File-name-safe form of an arm or comparison name."""
    out = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text.replace("=", "").replace(",", "_"))
    return out.strip("_") or "arm"


# ---------------------------------------------------------------------------------------------
# Finding and reading files
# ---------------------------------------------------------------------------------------------

@dataclass
class Inputs:
    tables: list[Path]
    summaries: list[Path]
    roots: list[Path]


def discover_inputs(paths: Sequence[str | Path]) -> Inputs:
    """Per-sample tables under each folder (recursively) or given directly, and any study_summary.json.

    A folder holding both ``samples.parquet`` and ``samples.csv`` has the same table twice (the
    CSV is an optional export), so only the Parquet one is read.
    """
    if not paths:
        raise ReportError("no input given: pass a study folder or one or more samples.parquet/samples.csv files")
    tables: list[Path] = []
    summaries: list[Path] = []
    roots: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ReportError(f"{path}: no such file or folder")
        roots.append(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("samples.*") if p.name in TABLE_NAMES and p.is_file())
            by_dir: dict[Path, list[Path]] = {}
            for p in found:
                by_dir.setdefault(p.parent, []).append(p)
            for folder, files in sorted(by_dir.items()):
                parquet = [p for p in files if p.suffix == ".parquet"]
                tables.extend(parquet or files)
            if not found:
                raise ReportError(f"{path}: no per-sample table (samples.parquet or samples.csv) anywhere under this folder")
            summaries.extend(sorted(p for p in path.rglob(SUMMARY_NAME) if p.is_file()))
        else:
            if path.suffix.lower() not in (".parquet", ".csv"):
                raise ReportError(f"{path}: not a per-sample table (expected a .parquet or .csv file)")
            tables.append(path)
            sibling = path.parent / SUMMARY_NAME
            if sibling.is_file():
                summaries.append(sibling)
    # The same file can be reached twice (a folder and a file inside it).
    tables = list(dict.fromkeys(p.resolve() for p in tables))
    summaries = list(dict.fromkeys(p.resolve() for p in summaries))
    return Inputs(tables=tables, summaries=summaries, roots=roots)


def read_table(path: Path, metrics: Sequence[str] = PRIMARY_METRICS) -> pd.DataFrame:
    """Read and validate one per-sample table; adds a ``source`` column with the file path.

    Values a metric cannot take (SSIM outside [-1, 1], negative LPIPS, NaN PSNR...) are input errors that
    name the table, the column and the first such row. Infinite PSNR (identical frames) is allowed and capped
    at ``psnr_cap`` in :func:`combine_tables` (:func:`lift.report.stats.cap_psnr`), the one place that
    handles it."""
    path = Path(path)
    df = _read_file(path)
    missing = [c for c in (*ID_COLUMNS, *metrics) if c not in df.columns]
    if missing:
        raise ReportError(
            f"{path}: missing column(s) {', '.join(missing)}; a per-sample table needs "
            f"{', '.join((*ID_COLUMNS, *metrics))} (see ARCHITECTURE.md)"
        )
    df = _clean_ids(path, df.copy())
    _check_metrics(path, df, metrics)
    check_metric_ranges(path, df)
    for arm in df["arm"].unique():
        parse_arm(arm, str(path))
    df["source"] = str(path)
    return df


def _read_file(path: Path) -> pd.DataFrame:
    """The table in `path` (parquet, else CSV with the id columns as text), not empty."""
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype={"sample_id": str, "video_id": str, "cluster_id": str, "arm": str, "split": str,
                                          "trial_id": str})
    except Exception as exc:  # any reader failure is the same user problem: the file is not a table
        raise ReportError(f"{path}: cannot read the per-sample table ({type(exc).__name__}: {exc})") from None
    if len(df) == 0:
        raise ReportError(f"{path}: the table is empty (no rows)")
    return df


def _clean_ids(path: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Id columns as stripped text (split lower-case, trial_id "" for baselines), indices and seeds as integers."""
    for col in ("sample_id", "video_id", "cluster_id", "arm", "split"):
        nulls = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if nulls.any():
            raise ReportError(f"{path}: column {col!r} is empty in {int(nulls.sum())} row(s)")
        df[col] = df[col].astype(str).str.strip()
    df["split"] = df["split"].str.lower()
    # Baselines have no trial: accept an empty/missing trial_id whatever the writer's null is.
    df["trial_id"] = df["trial_id"].map(lambda v: "" if pd.isna(v) else str(v))
    for col in ("target_index", "seed"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values != np.round(values))
        if bad.any():
            example = df.loc[bad, col].iloc[0]
            raise ReportError(f"{path}: column {col!r} must hold integers; {int(bad.sum())} row(s) do not (e.g. {example!r})")
        df[col] = values.astype("int64")
    df["timestep"] = pd.to_numeric(df["timestep"], errors="coerce")
    return df


def _check_metrics(path: Path, df: pd.DataFrame, metrics: Sequence[str]) -> None:
    """Metric (and flow) columns numeric, in place; the tested metrics a number in every test row, finite
    except +inf PSNR."""
    for col in (*metrics, *(c for c in FLOW_METRICS if c in df.columns and c not in metrics)):
        values = pd.to_numeric(df[col], errors="coerce")
        text_bad = values.isna() & df[col].notna()
        if text_bad.any():
            raise ReportError(
                f"{path}: column {col!r} must be numeric; {int(text_bad.sum())} row(s) are not "
                f"(e.g. {df.loc[text_bad, col].iloc[0]!r})"
            )
        df[col] = values.astype(float)
    for col in metrics:
        values = df[col]
        # Tuning-stage (val) rows may lack a metric that is too slow to compute per trial; they are only summarised.
        nan = values.isna() & (df["split"].str.lower() == TEST_SPLIT)
        if nan.any():
            _bad_value(path, df, col, nan, "a number in every test row (NaN: not evaluated; re-evaluate, or leave "
                                           "the metric out with --metrics)")
        # +inf PSNR is legitimate (identical frames) and capped later; anything else non-finite is not.
        bad = values.notna() & ~np.isfinite(values) & ~((col == "psnr") & (values == np.inf))
        if bad.any():
            _bad_value(path, df, col, bad, "a finite number" + (" or +inf (identical frames)" if col == "psnr" else ""))


# What a metric can be at all: a value outside is a broken evaluation, not a result.
METRIC_RANGES: dict[str, tuple[float, float, str]] = {
    "ssim": (-1.0, 1.0, "within [-1, 1]"),
    "lpips": (0.0, math.inf, "non-negative"),
    "epe": (0.0, math.inf, "non-negative"),
    "warp_error": (0.0, math.inf, "non-negative"),
}


def _bad_value(path: Path, df: pd.DataFrame, col: str, bad: pd.Series, expected: str) -> None:
    """Raise naming the table, the column and the first offending row (0-based, with its sample and arm)."""
    row = int(np.flatnonzero(bad.to_numpy())[0])
    rec = df.iloc[row]
    raise ReportError(f"{path}: column {col!r} row {row} (sample_id {rec['sample_id']!r}, arm {rec['arm']!r}) is "
                      f"{_plain(rec[col])!r}, expected {expected}; {int(bad.sum())} row(s) like it")


def check_metric_ranges(path: Path, df: pd.DataFrame) -> None:
    """PSNR never NaN; SSIM within [-1, 1]; LPIPS and flow errors non-negative (NaN allowed where a metric
    may be missing: val rows and flow columns)."""
    if "psnr" in df.columns:
        nan = df["psnr"].isna()
        if nan.any():
            _bad_value(path, df, "psnr", nan, "a number of dB (PSNR is never NaN)")
    for col, (low, high, expected) in METRIC_RANGES.items():
        if col in df.columns:
            values = df[col]
            bad = values.notna() & ((values < low) | (values > high))
            if bad.any():
                _bad_value(path, df, col, bad, expected)


def _moved_storage(storage: str, study_root: Path) -> str:
    """The Optuna storage URL, following a study folder that was moved after the study ran (the summary
    records absolute paths): a missing ``sqlite:///`` file found under the folder's own name is used."""
    prefix = "sqlite:///"
    if storage.startswith(prefix):
        recorded = Path(storage[len(prefix):])
        here = study_root / recorded.name
        if not recorded.is_file() and here.is_file():
            return prefix + str(here)
    return storage


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def read_summaries(paths: Sequence[Path]) -> tuple[dict[str, Any], list[str]]:
    """Merge the optional study_summary.json files into one normalised dict; unreadable ones become notes.

    Every key is optional. Accepted shapes: ``arms`` as strings or objects with ``key``/``arm`` (and
    optionally ``best_val_psnr``, ``best_trial``, ``best_params``); ``trials`` objects with ``arm``,
    ``trial_id``, ``status``, ``best_val_psnr``, ``config`` or ``params``; ``confirm`` runs with
    ``arm``, ``seed``, ``status``; ``failed_trials`` as a count or a list; ``optuna_storage`` or
    ``optuna.storage``; ``complete``; ``family`` (the study config's ``report:`` section, the test family);
    ``base_arm`` and per arm ``factors``/``changes`` (the ablation design); ``config`` (the study config,
    whose ``report:`` section names the primary comparison and the ablation family).
    """
    merged: dict[str, Any] = {"arms": [], "arm_info": {}, "trials": [], "confirm": [], "failed_trials": 0,
                              "sources": []}
    notes: list[str] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
        except Exception as exc:
            notes.append(f"{path}: study summary ignored, it is not readable JSON ({exc})")
            continue
        merged["sources"].append(str(path))
        arms = data.get("arms")
        for a in arms if isinstance(arms, list) else []:
            if isinstance(a, str):
                merged["arms"].append(a)
            elif isinstance(a, dict) and isinstance(a.get("key", a.get("arm")), str):
                key = a.get("key", a.get("arm"))
                merged["arms"].append(key)
                merged["arm_info"][key] = {"best_val_psnr": _number(a.get("best_val_psnr")),
                                           "best_trial": a.get("best_trial"),
                                           "best_params": a.get("best_params", a.get("best_config")),
                                           # the arm's factor values and those that differ from the base arm
                                           "factors": a.get("factors") if isinstance(a.get("factors"), dict) else None,
                                           "changes": a.get("changes") if isinstance(a.get("changes"), list) else None}
        trials = data.get("trials")
        for t in trials if isinstance(trials, list) else []:
            if isinstance(t, dict):
                t = dict(t)
                t.setdefault("config", t.get("params") or {})
                merged["trials"].append(t)
        confirm = data.get("confirm")
        merged["confirm"].extend(r for r in (confirm if isinstance(confirm, list) else []) if isinstance(r, dict))
        failed = data.get("failed_trials")
        if _number(failed) is not None:
            merged["failed_trials"] += int(failed)
        elif isinstance(failed, list):
            merged["failed_trials"] += len(failed)
        optuna = data.get("optuna")
        storage = data.get("optuna_storage") or (optuna.get("storage") if isinstance(optuna, dict) else None)
        if storage and "optuna_storage" not in merged:
            merged["optuna_storage"] = _moved_storage(str(storage), Path(path).parent)
        if data.get("complete") is False:
            notes.append(f"{path}: the study summary says the study is not complete")
        for key in ("study", "name", "preset", "dataset", "family", "design", "base_arm", "config"):
            if key in data and key not in merged:
                merged[key] = data[key]
    merged["arms"] = list(dict.fromkeys(merged["arms"]))
    return merged, notes


# ---------------------------------------------------------------------------------------------
# The study: all rows, validated together
# ---------------------------------------------------------------------------------------------

@dataclass
class Study:
    rows: pd.DataFrame  # every row of every table (test and val), PSNR already capped
    metrics: list[str]
    flow_metrics: list[str]
    sources: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    psnr_cap: float = PSNR_CEILING_DB
    n_psnr_capped: dict[str, int] = field(default_factory=dict)  # per arm, test rows

    @property
    def test(self) -> pd.DataFrame:
        return self.rows[self.rows["split"] == TEST_SPLIT]

    @property
    def val(self) -> pd.DataFrame:
        return self.rows[self.rows["split"] == VAL_SPLIT]

    @property
    def test_arms(self) -> list[str]:
        return sorted_arms(self.test["arm"].unique())

    @property
    def val_arms(self) -> list[str]:
        return sorted_arms(self.val["arm"].unique())


def _sources_of(df: pd.DataFrame) -> str:
    return ", ".join(sorted(df["source"].unique()))


def combine_tables(
    frames: Sequence[pd.DataFrame],
    *,
    metrics: Sequence[str] = PRIMARY_METRICS,
    psnr_cap: float = PSNR_CEILING_DB,
    summary: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> Study:
    """Validate the tables together: duplicates, sample-to-video consistency, test rows, PSNR cap."""
    if not frames:
        raise ReportError("no per-sample tables to combine")
    df = pd.concat(frames, ignore_index=True)
    if "source" not in df.columns:
        df["source"] = "<DataFrame>"
    notes = list(notes)
    other = sorted(set(df["split"]) - {TEST_SPLIT, VAL_SPLIT})
    if other:
        notes.append(f"rows with split {', '.join(other)} are ignored (only 'test' is tested and 'val' summarised)")
        df = df[df["split"].isin([TEST_SPLIT, VAL_SPLIT])]
    test = df[df["split"] == TEST_SPLIT]
    if test.empty:
        raise ReportError(
            f"no test rows (split='test') in {_sources_of(df)}: found only split(s) "
            f"{', '.join(sorted(set(df['split'])))}; validation rows are summarised, never tested — run the confirm stage"
        )
    _check_duplicates(test, ["arm", "seed", "sample_id"], "test")
    val = df[df["split"] == VAL_SPLIT]
    if not val.empty:
        _check_duplicates(val, ["arm", "seed", "trial_id", "sample_id"], "val")
    _check_sample_identity(df)
    df = df.copy()
    n_capped: dict[str, int] = {}
    if "psnr" in df.columns:
        capped, over = cap_psnr(df["psnr"].to_numpy(), psnr_cap)
        over = pd.Series(over, index=df.index)
        for arm, count in df[over & (df["split"] == TEST_SPLIT)].groupby("arm").size().items():
            n_capped[str(arm)] = int(count)
        df["psnr_capped"] = over
        df["psnr"] = capped
    flow = [c for c in FLOW_METRICS if c in df.columns and c not in metrics and df.loc[df["split"] == TEST_SPLIT, c].notna().any()]
    return Study(
        rows=df.reset_index(drop=True),
        metrics=list(metrics),
        flow_metrics=flow,
        sources=sorted(df["source"].unique()),
        summary=summary or {},
        notes=notes,
        psnr_cap=psnr_cap,
        n_psnr_capped=n_capped,
    )


def _check_duplicates(df: pd.DataFrame, keys: list[str], split: str) -> None:
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        first = df[dup].sort_values(keys).iloc[0]
        where = ", ".join(f"{k}={_plain(first[k])!r}" for k in keys)
        files = _sources_of(df[dup])
        raise ReportError(
            f"duplicate {split} rows: {int(dup.sum())} rows share ({', '.join(keys)}), e.g. {where}; "
            f"files: {files}. Each (arm, seed, sample_id) must be evaluated once"
            + (" per trial" if "trial_id" in keys else "")
        )


def _plain(value: Any) -> Any:
    """numpy scalar -> Python scalar, so messages read seed=0 and not seed=np.int64(0)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_sample_identity(df: pd.DataFrame) -> None:
    """One sample_id must always name the same video, source and target frame; one video one source."""
    n = df.groupby("video_id")["cluster_id"].nunique()
    if (n > 1).any():
        vid = n[n > 1].index[0]
        vals = sorted(map(str, df.loc[df["video_id"] == vid, "cluster_id"].unique()))
        raise ReportError(f"video_id {vid!r} has different cluster_id values ({', '.join(vals)}) in "
                          f"{_sources_of(df[df['video_id'] == vid])}; a video comes from one independent source")
    for col in ("video_id", "cluster_id", "target_index"):
        n = df.groupby("sample_id")[col].nunique()
        bad = n[n > 1]
        if not bad.empty:
            sid = bad.index[0]
            vals = sorted(map(str, df.loc[df["sample_id"] == sid, col].unique()))
            raise ReportError(
                f"sample_id {sid!r} has different {col} values ({', '.join(vals)}) in {_sources_of(df[df['sample_id'] == sid])}; "
                f"the tables do not describe the same evaluation set"
            )


def load_study(
    paths: Sequence[str | Path],
    *,
    metrics: Sequence[str] = PRIMARY_METRICS,
    psnr_cap: float = PSNR_CEILING_DB,
) -> Study:
    """Find, read and validate every per-sample table under ``paths`` (folders or files)."""
    unknown = [m for m in metrics if m not in METRIC_DIRECTION]
    if unknown:
        raise ReportError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_DIRECTION)}")
    if not metrics:
        raise ReportError("no metric to test: --metrics is empty")
    if not (math.isfinite(psnr_cap) and psnr_cap > 0):
        raise ReportError(f"--psnr_cap must be a positive finite number of dB, got {psnr_cap}")
    inputs = discover_inputs(paths)
    frames = [read_table(p, metrics) for p in inputs.tables]
    summary, notes = read_summaries(inputs.summaries)
    return combine_tables(frames, metrics=metrics, psnr_cap=psnr_cap, summary=summary, notes=notes)


# ---------------------------------------------------------------------------------------------
# Seeds and pairing
# ---------------------------------------------------------------------------------------------

def seed_average(test: pd.DataFrame, arm: str, columns: Sequence[str]) -> pd.DataFrame:
    """One row per sample of ``arm``: the mean over its seeds of ``columns``.

    Refuses when the seeds of an arm were evaluated on different sample sets (the mean would mix
    different frames).
    """
    rows = test[test["arm"] == arm]
    if rows.empty:
        raise ReportError(f"arm {arm!r} has no test rows")
    sets = {seed: frozenset(g["sample_id"]) for seed, g in rows.groupby("seed")}
    if len(set(sets.values())) > 1:
        sizes = ", ".join(f"seed {s}: {len(v)}" for s, v in sorted(sets.items()))
        raise ReportError(
            f"arm {arm!r}: its seeds were evaluated on different sample sets ({sizes} samples) in {_sources_of(rows)}"
        )
    cols = [c for c in columns if c in rows.columns]
    agg: dict[str, Any] = {c: "mean" for c in cols}
    agg.update({"video_id": "first", "cluster_id": "first", "target_index": "first", "timestep": "first",
                "seed": "nunique"})
    if "psnr_capped" in rows.columns:
        agg["psnr_capped"] = "any"
    out = rows.groupby("sample_id", sort=True).agg(agg).rename(columns={"seed": "n_seeds"})
    return out.reset_index()


def pair_arms(test: pd.DataFrame, treatment: str, control: str, columns: Sequence[str]) -> pd.DataFrame:
    """Seed-averaged samples of both arms joined on sample_id; refuses when the sample sets differ.

    Columns: sample_id, video_id, cluster_id, ``<metric>_t``, ``<metric>_c`` per metric, psnr_capped_t/_c.
    """
    t = seed_average(test, treatment, columns)
    c = seed_average(test, control, columns)
    only_t = sorted(set(t["sample_id"]) - set(c["sample_id"]))
    only_c = sorted(set(c["sample_id"]) - set(t["sample_id"]))
    if only_t or only_c:
        parts = []
        if only_t:
            parts.append(f"{len(only_t)} only in {treatment} (e.g. {only_t[0]})")
        if only_c:
            parts.append(f"{len(only_c)} only in {control} (e.g. {only_c[0]})")
        files = _sources_of(test[test["arm"].isin([treatment, control])])
        raise ReportError(
            f"arms {treatment!r} ({len(t)} samples) and {control!r} ({len(c)} samples) were evaluated on different "
            f"sample sets: {'; '.join(parts)}; files: {files}. Every arm of a study must use the same sample_ids"
        )
    merged = t.merge(c, on="sample_id", suffixes=("_t", "_c"))
    merged = (merged.rename(columns={"video_id_t": "video_id", "cluster_id_t": "cluster_id"})
              .drop(columns=["video_id_c", "cluster_id_c"]))
    return merged.sort_values("sample_id").reset_index(drop=True)


def seed_table(test: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per arm and seed: number of samples and the mean of each metric (the seed spread)."""
    g = test.groupby(["arm", "seed"])
    out = g[list(metrics)].mean()
    out.insert(0, "n", g.size())
    out = out.reset_index()
    out["_k"] = out["arm"].map(arm_sort_key)
    return out.sort_values(["_k", "seed"]).drop(columns="_k").reset_index(drop=True)


def seed_cluster_means(test: pd.DataFrame, arm: str, metric: str, clusters: Sequence[str]) -> np.ndarray:
    """``[seeds, clusters]``: the mean of ``metric`` over each cluster's samples, per seed of ``arm`` (the
    decision's input, :mod:`lift.report.decision`). Every seed has every cluster (same sample sets)."""
    rows = test[test["arm"] == arm]
    table = rows.pivot_table(index="seed", columns="cluster_id", values=metric, aggfunc="mean", observed=True)
    missing = [c for c in clusters if c not in table.columns]
    if missing or table.isna().to_numpy().any():
        raise ReportError(f"arm {arm!r}: not every seed has samples of every cluster (e.g. {missing[:1] or 'a gap'}) "
                          f"in {_sources_of(rows)}")
    return table.reindex(columns=list(clusters)).to_numpy(dtype=float)
