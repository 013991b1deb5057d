"""`python -m lift.bench {data|model|train|metrics|infer|context|all} [--json FILE]`."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from types import ModuleType

from lift.atomic import write_json
from lift.bench.common import format_table

SUBCOMMANDS = ("data", "model", "train", "metrics", "infer", "context")


def _load(name: str) -> tuple[ModuleType | None, str | None]:
    """Import lift.bench.<name>; a module that cannot be imported must not take the others down."""
    try:
        return importlib.import_module(f"lift.bench.{name}"), None
    except Exception as err:  # noqa: BLE001 - reported per benchmark, the rest still run
        return None, f"{type(err).__name__}: {err}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lift.bench", description=__doc__)
    sub = parser.add_subparsers(dest="bench", required=True)
    modules: dict[str, ModuleType] = {}
    broken: dict[str, str] = {}
    for name in SUBCOMMANDS:
        module, error = _load(name)
        if module is None:
            broken[name] = error or "import failed"
            p = sub.add_parser(name, help=f"(unavailable: {broken[name]})")
            p.add_argument("--quick", action="store_true")
            p.add_argument("--json")
            continue
        modules[name] = module
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.add_argument("--json", help="also write the records to this JSON file")
    p_all = sub.add_parser("all", help="every benchmark in one run")
    p_all.add_argument("--json", help="also write the records to this JSON file")
    p_all.add_argument("--quick", action="store_true", help="smallest sizes only")
    args = parser.parse_args(argv)

    if args.bench in broken:
        print(f"error: benchmark {args.bench!r} cannot be imported: {broken[args.bench]}", file=sys.stderr)
        return 2
    records: list[dict] = []
    failed: list[str] = []
    names = SUBCOMMANDS if args.bench == "all" else (args.bench,)
    for name in names:
        print(f"== bench {name} ==", flush=True)
        if name in broken:
            print(f"skipped: lift.bench.{name} cannot be imported: {broken[name]}", flush=True)
            failed.append(name)
            continue
        module = modules[name]
        if args.bench == "all":
            sub_args = module.add_arguments(argparse.ArgumentParser()).parse_args(
                ["--quick"] if args.quick else [])
            # In `all`, one failing benchmark is reported and the others still run.
            try:
                recs = module.run(sub_args)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                failed.append(name)
                continue
        else:
            recs = module.run(args)
        print(format_table(recs), flush=True)
        records += recs
    if args.json:
        write_json(args.json, records)
        print(f"wrote {len(records)} records to {args.json}")
    if failed:
        print(f"error: benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
