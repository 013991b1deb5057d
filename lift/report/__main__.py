"""``python -m lift.report STUDY_DIR_OR_TABLES... [--treatment SEL] [--control SEL] [--alpha A] [--out DIR]``.

Prints the one-sentence decision and the report path. User errors (bad input, unknown arm) end
with one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from lift.atomic import OutputPathError, check_output_dir
from lift.report import make_report
from lift.report.analysis import ReportOptions
from lift.report.stats import PSNR_CEILING_DB
from lift.report.tables import PRIMARY_METRICS, ReportError, slug


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lift.report",
        description="The verdict on H0 of a LIFT study: paired tests over independent sources, seeds random "
                    "(reads samples.parquet/samples.csv tables; see shared/design/STATISTICS.md).",
    )
    p.add_argument("inputs", nargs="+", help="study folder(s) (searched recursively) or per-sample table files")
    p.add_argument("--out", default=None, help="report folder (default: reports/<name of the first input>)")
    p.add_argument("--treatment", action="append", default=None, metavar="SEL",
                   help="treatment arm selector, e.g. window=15 (every matching arm is compared; repeatable). "
                        "Default: the study config's report.treatment; else a one_at_a_time study's window-15 base "
                        "arm; else the largest-window arm, best by validation PSNR when several share it")
    p.add_argument("--control", action="append", default=None, metavar="SEL",
                   help="control arm selector matching exactly one arm (repeatable). Default: the study config's "
                        "report.control; else the base arm's window-3 change (one_at_a_time) or window=3 (primary); "
                        "every baseline arm is secondary")
    p.add_argument("--ablation_family", "--ablation-family", choices=("secondary", "own"), default=None,
                   help="where the ablation table's rows are tested: with the gatekept secondary family or in their "
                        "own Holm family (default: the study config's report.ablation_family, else secondary)")
    p.add_argument("--alpha", type=float, default=None,
                   help="family-wise significance level (default: the study's family, else 0.05; overriding a "
                        "pre-registered family is noted in the report)")
    p.add_argument("--procedure", choices=("fixed_sequence", "holm"), default=None,
                   help="how the endpoints are combined (default: the study's family, else fixed_sequence)")
    p.add_argument("--metrics", default=",".join(PRIMARY_METRICS),
                   help="comma-separated metric columns to test (default psnr,ssim,lpips)")
    p.add_argument("--psnr_cap", "--psnr-cap", type=float, default=PSNR_CEILING_DB,
                   help=f"PSNR ceiling in dB applied before differencing; +inf is capped (default {PSNR_CEILING_DB:g})")
    p.add_argument("--n_permutations", "--n-permutations", type=int, default=10_000,
                   help="random sign flips when the permutation test is not exact (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutation draws")
    p.add_argument("--no_plots", "--no-plots", action="store_true", help="skip the PNG figures")
    return p


def default_out(inputs: Sequence[str]) -> Path:
    first = Path(inputs[0])
    name = first.resolve().name if first.is_dir() else first.resolve().parent.name
    return Path("reports") / slug(name or "study")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    options = ReportOptions(alpha=args.alpha, procedure=args.procedure, treatments=args.treatment,
                            controls=args.control, ablation_family=args.ablation_family, n_permutations=args.n_permutations, seed=args.seed)
    out = Path(args.out) if args.out else default_out(args.inputs)
    try:
        check_output_dir(out, "--out")  # before the analysis: a bad location must not wait for it
    except OutputPathError as exc:
        print(f"lift.report: error: {exc}", file=sys.stderr)
        return 2
    try:
        analysis, written = make_report(args.inputs, out, options=options, metrics=metrics,
                                        psnr_cap=args.psnr_cap, make_plots=not args.no_plots)
    except ReportError as exc:
        print(f"lift.report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --out names a file or a read-only folder
        print(f"lift.report: error: cannot write the report to {out}: {exc}", file=sys.stderr)
        return 2
    print(analysis.results["decision"])
    print(f"report: {written['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
