"""Calibration of the report's decision itself (STATISTICS.md v2, "Validation of the decision").

    python studies/simulate_calibration.py                  # 2000 studies per cell and scenario, both skews
    python studies/simulate_calibration.py --sims 300       # quick look
    python studies/simulate_calibration.py --json out.json  # also write the figures

Simulated per-sample values (samples nested in clips nested in groups; three seeds per arm with a
shared shift per trained model; skewed per-group differences; the three endpoints in fixed sequence
with the harm check and the "window 3 beats blend" sanity check) go through
``lift.report.decision.decide_primary``, the function the report calls. One table row per number of
clusters (8, 30, 200) x seed SD (0, half, twice the per-cluster SD) x direction of the skew: the rate
of "H0 rejected" under H0 against the binomial 99% interval of alpha, the old clip-level and
seed-ignoring decisions on the same draws, power under a known effect, and the interval's coverage.
Exit code 1 when the decision exceeds the interval or coverage leaves 95% +- 2% in some cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from lift.atomic import write_json  # noqa: E402
from lift.logging.progress import Progress  # noqa: E402
from lift.report.calibration import grid, run_cell, table_lines  # noqa: E402


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sims", type=int, default=2000, help="simulated studies per cell under H0 (and as many under the effect)")
    p.add_argument("--clusters", type=_ints, default=(8, 30, 200), help="numbers of clusters, comma-separated")
    p.add_argument("--seed_factors", type=_floats, default=(0.0, 0.5, 2.0),
                   help="seed SD as multiples of the per-cluster SD, comma-separated")
    p.add_argument("--skews", type=_ints, default=(1, -1), help="+1 right-skewed, -1 left-skewed group benefit")
    p.add_argument("--effect", type=float, default=0.5, help="true effect of the power scenario, in per-cluster SDs")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--procedure", choices=("fixed_sequence", "holm"), default="fixed_sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.sims < 10:
        p.error("--sims must be at least 10")
    settings = [s for skew in args.skews for s in grid(args.clusters, args.seed_factors, skew=skew, effect=args.effect,
                                                      alpha=args.alpha, procedure=args.procedure)]
    start = time.perf_counter()
    cells = []
    with Progress(2 * args.sims * len(settings), desc="simulated studies", unit="study", interval_s=10.0) as bar:
        for i, setting in enumerate(settings):
            cells.append(run_cell(args.sims, setting, seed=args.seed + i, progress=bar.update))
    for skew in args.skews:
        print(f"\nskew {'+1 (a few groups gain much)' if skew > 0 else '-1 (a few groups lose much)'}:")
        print("\n".join(table_lines([c for c in cells if c.setting.skew == skew])))
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        write_json(args.json, [c.to_dict() for c in cells])
        print(f"figures: {args.json}")
    failed = [c for c in cells if not (c.holds_alpha and c.coverage_ok)]
    for c in failed:
        s = c.setting
        print(f"CALIBRATION CHECK FAILED: {s.n_clusters} clusters, seed SD {s.seed_factor:g}x, skew {s.skew:+d}: "
              f"reject_h0 {c.reject_h0.rate:.4f} (limit {c.type1_limit:.4f}), coverage {c.coverage.rate:.4f}",
              file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
