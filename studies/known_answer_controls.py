#!/usr/bin/env python
"""The service's known-answer check: the positive and the negative control study, then a summary.

    python studies/known_answer_controls.py [--out-root runs] [--report-root DIR] [--scratch] [--strict] [--set k=v ...]

Runs ``studies/context_ablation.py`` twice, on procedurally generated sources whose answer is known:

- ``configs/study_control_positive.yaml``: the far frames carry what the anchors lack (H1 true by
  construction): the study must reject H0;
- ``configs/study_control_negative.yaml``: the far frames come from an unrelated source (H0 true by
  construction): the study must not reject it.

Both arms of both studies fine-tune the published RIFE HD anchors (``configs/known_answer_rife_hd.yaml``);
``--scratch`` runs the from-scratch twins instead (``configs/study_control_*_scratch.yaml``, RIFE-m
trained from scratch, into ``control-*-scratch``).

Each study goes to ``<out-root>/control-positive`` / ``control-negative`` (resumed if it exists)
and its report to ``<report-root>/control-positive`` / ``control-negative`` (default report root:
``<out-root>/reports``, so ``make study`` leaves a clone clean; ``make example-reports`` writes the
committed ones under ``reports/``). The last lines say,
per study, the verdict and the primary effect with its interval, e.g.::

    positive control: H0 rejected, PSNR +2.10 dB [1.60, 2.60] (expected: H0 rejected) -> runs/reports/control-positive
    negative control: H0 not rejected, PSNR +0.02 dB [-0.10, 0.14] (expected: H0 not rejected) -> ...

Exit code 0 when both studies ran and reported (whatever their verdicts: a control that fails is a
finding, printed as ``UNEXPECTED``), else the failing study's exit code. ``--strict`` also exits 1
when a verdict differs from the known answer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STUDY_SCRIPT = REPO / "studies" / "context_ablation.py"


@dataclass(frozen=True)
class Control:
    label: str
    preset: str
    folder: str
    expected: str


CONTROLS = (
    Control("positive control", "control_positive", "control-positive", "H0 rejected"),
    Control("negative control", "control_negative", "control-negative", "H0 not rejected"),
)


def primary_effect(results: dict[str, Any]) -> str:
    """The primary comparison's first endpoint as `PSNR +2.10 dB [1.60, 2.60]` (from results.json)."""
    primary = [c for c in results.get("comparisons", []) if c.get("family") == "primary"]
    if not primary or not primary[0].get("metrics"):
        return "no primary comparison"
    m = primary[0]["metrics"][0]
    unit = " dB" if m["metric"] == "psnr" else ""
    return (f"{m['metric'].upper()} {m['mean_diff']:+.3g}{unit} "
            f"[{m['ci_low']:.3g}, {m['ci_high']:.3g}]")


def summary_line(control: Control, results: dict[str, Any], report_dir: Path) -> str:
    verdict = results.get("verdict", "?")
    mark = "" if verdict == control.expected else "  UNEXPECTED"
    return (f"{control.label}: {verdict}, {primary_effect(results)} (expected: {control.expected}){mark}"
            f" -> {report_dir}")


def scratch_twin(control: Control) -> Control:
    """The same control with both arms trained from scratch (RIFE-m)."""
    return Control(control.label, f"{control.preset}_scratch", f"{control.folder}-scratch", control.expected)


def run_control(control: Control, out_root: Path, report_root: Path, overrides: list[str]) -> tuple[int, Path]:
    out = out_root / control.folder
    report = report_root / control.folder
    cmd = [sys.executable, str(STUDY_SCRIPT), "--preset", control.preset, "--out", str(out),
           "--report-out", str(report), "--resume"]
    for kv in overrides:
        cmd += ["--set", kv]
    print(f"\n=== {control.label}: {' '.join(cmd[1:])}", flush=True)
    return subprocess.run(cmd).returncode, report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="known_answer_controls.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out-root", type=Path, default=Path("runs"), help="parent of the two study folders")
    p.add_argument("--report-root", type=Path, default=None,
                   help="parent of the two report folders (default: <out-root>/reports)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to both studies (e.g. seed=1); repeatable")
    p.add_argument("--strict", action="store_true", help="exit 1 when a verdict differs from the known answer")
    p.add_argument("--scratch", action="store_true",
                   help="the from-scratch twins (RIFE-m trained from scratch) instead of the published anchors")
    args = p.parse_args(argv)

    report_root = args.report_root or args.out_root / "reports"
    lines, unexpected = [], 0
    for control in (scratch_twin(c) for c in CONTROLS) if args.scratch else CONTROLS:
        code, report = run_control(control, args.out_root, report_root, args.overrides)
        if code != 0:
            print(f"{control.label}: the study failed (exit {code}); rerun the same command to resume", file=sys.stderr)
            return code
        results_path = report / "results.json"
        if not results_path.is_file():
            print(f"{control.label}: no report at {results_path}", file=sys.stderr)
            return 1
        results = json.loads(results_path.read_text())
        unexpected += results.get("verdict") != control.expected
        lines.append(summary_line(control, results, report))
    print("\nknown-answer controls:")
    for line in lines:
        print(f"  {line}")
    return 1 if (args.strict and unexpected) else 0


if __name__ == "__main__":
    sys.exit(main())
