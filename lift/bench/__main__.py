"""`python -m lift.bench {data|model|train|metrics|infer|all} [--json FILE]`."""

from __future__ import annotations

import argparse
import importlib
import sys

from lift.bench.common import format_table, write_json

SUBCOMMANDS = ("data", "model", "train", "metrics", "infer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lift.bench", description=__doc__)
    sub = parser.add_subparsers(dest="bench", required=True)
    modules = {}
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"lift.bench.{name}")
        modules[name] = module
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.add_argument("--json", help="also write the records to this JSON file")
    p_all = sub.add_parser("all", help="every benchmark in one run")
    p_all.add_argument("--json", help="also write the records to this JSON file")
    p_all.add_argument("--quick", action="store_true", help="smallest sizes only")
    args = parser.parse_args(argv)

    records: list[dict] = []
    names = SUBCOMMANDS if args.bench == "all" else (args.bench,)
    for name in names:
        module = modules[name]
        if args.bench == "all":
            sub_args = module.add_arguments(argparse.ArgumentParser()).parse_args(
                ["--quick"] if args.quick else [])
        else:
            sub_args = args
        print(f"== bench {name} ==", flush=True)
        recs = module.run(sub_args)
        print(format_table(recs), flush=True)
        records += recs
    if args.json:
        write_json(records, args.json)
        print(f"wrote {len(records)} records to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
