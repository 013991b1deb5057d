"""Full-size calibration simulation of the report's video-level decision (STATISTICS.md, "Validation").

    python studies/simulate_calibration.py                 # 2000 studies per scenario (a few minutes on one core)
    python studies/simulate_calibration.py --sims 300      # quick look
    python studies/simulate_calibration.py --json out.json # also write the figures

Simulated studies have within-video correlation (a random per-video effect plus frame noise). It
prints, with binomial 99% intervals: the type-I error of the video-level Wilcoxon decision (should
be near alpha), the sample-level Wilcoxon's rejection rate under the same H0 (over-rejects), power
against theory for a known effect, and the cluster-bootstrap CI coverage of the true mean.
Exit code 1 when a check falls outside its interval, so the script can gate a release.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from lift.atomic import atomic_write_text  # noqa: E402
from lift.logging.progress import Progress  # noqa: E402
from lift.report.calibration import Setting, run_calibration  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    d = Setting()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sims", type=int, default=2000, help="simulated studies per scenario (H0 and effect)")
    p.add_argument("--videos", type=int, default=d.n_videos)
    p.add_argument("--samples_per_video", type=int, default=d.samples_per_video)
    p.add_argument("--sd_video", type=float, default=d.sd_video, help="SD of the per-video effect (correlation)")
    p.add_argument("--sd_sample", type=float, default=d.sd_sample, help="SD of frame-level noise")
    p.add_argument("--effect", type=float, default=d.effect, help="true mean improvement of the effect scenario")
    p.add_argument("--alpha", type=float, default=d.alpha)
    p.add_argument("--n_boot", type=int, default=2000, help="bootstrap replicates per simulated study")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.sims < 10:
        p.error("--sims must be at least 10")
    setting = Setting(n_videos=args.videos, samples_per_video=args.samples_per_video, sd_video=args.sd_video,
                      sd_sample=args.sd_sample, effect=args.effect, alpha=args.alpha, n_boot=args.n_boot)
    start = time.perf_counter()
    with Progress(2 * args.sims, desc="simulated studies", unit="study", interval_s=5.0) as bar:
        last = [0]

        def progress(done: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        result = run_calibration(args.sims, setting, seed=args.seed, progress=progress)
    print("\n".join(result.lines()))
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"figures: {args.json}")
    ok = (result.type1_video.within and result.type1_samples.count > result.type1_samples.interval[1]
          and result.power_ttest.within and result.coverage.within)
    if not ok:
        print("CALIBRATION CHECK FAILED: a figure is outside its binomial 99% interval", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
