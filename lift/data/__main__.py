"""``python -m lift.data prepare <dataset> [--root R] --out O``: decode a dataset into the frame cache.

Every video of every split is decoded once (sequentially, exact frame order), checked (truncation,
corrupt frames, size changes) and stored as ``uint8`` ``.npy`` under ``--out``; image sequences are
stored too (resized when ``--frame_size`` is given). Training then reads the cache with
``--set data.cache_dir=O`` (and the same ``data.frame_size``, which is part of the cache key).
Re-running skips what is already cached. Bad inputs are listed at the end (``--on_bad_video error``
stops at the first one instead).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lift.atomic import check_output_dir
from lift.config import ConfigError, apply_overrides, load_config
from lift.data.decode import BadVideoError
from lift.data.registry import available_datasets, get_dataset_class
from lift.data.sources import FrameSource, ImageSequenceSource, SegmentSource
from lift.logging.progress import Progress

log = logging.getLogger(__name__)

ROOT_OPTIONAL = ("video_folder", "synthetic")


def _unique_sources(sources: list[FrameSource]) -> list[FrameSource]:
    seen: set[int] = set()
    out = []
    for src in sources:
        while isinstance(src, SegmentSource):
            src = src.parent
        if id(src) not in seen:
            seen.add(id(src))
            out.append(src)
    return out


def prepare(dataset: str, root: str | None, out: str, *, frame_size: list[int] | None = None,
            config: str | None = None, overrides: list[str] | None = None, on_bad_video: str = "skip") -> int:
    cls = get_dataset_class(dataset)
    if dataset == "synthetic":
        print("synthetic sequences are generated on the fly; there is nothing to prepare")
        return 0
    if root is None and dataset not in ROOT_OPTIONAL:
        raise ConfigError(f"prepare {dataset}: --root is required (the folder holding the dataset)")
    check_output_dir(out, "--out")  # before decoding anything
    values: dict[str, object] = {"data.dataset": dataset, "data.data_root": root, "data.cache_dir": out,
                                 "data.cache_frames": True, "data.on_bad_video": on_bad_video}
    if frame_size is not None:
        values["data.frame_size"] = list(frame_size)
    cfg = apply_overrides(load_config(config, overrides or []), values)
    sequences, bad = cls.list_sequences(cfg.data, "all")
    sources = _unique_sources([s.source for s in sequences])
    frames = 0
    total_bytes = 0
    prepared = 0
    with Progress(len(sources), desc=f"prepare {dataset}", unit="video", interval_s=10.0) as progress:
        for src in sources:
            try:
                if isinstance(src, ImageSequenceSource):
                    src.materialize()
                else:
                    src.validate()
            except BadVideoError as err:
                if on_bad_video == "error":
                    raise
                log.warning("skipping %s: %s", err.path, err.reason)
                bad.append((err.path, err.reason))
                progress.update()
                continue
            prepared += 1
            frames += src.length
            for entry in src.cache_files():
                if entry.is_file():
                    total_bytes += entry.stat().st_size
            progress.update()
    print(f"prepared {prepared} of {len(sources)} videos/sequences of {dataset}: "
          f"{frames} frames, {total_bytes / 2**30:.2f} GiB in {Path(out).expanduser()}")
    if bad:
        print(f"{len(bad)} bad inputs (skipped):")
        for path, reason in bad:
            print(f"  {path}: {reason}")
    hint = f"--set data.cache_dir={out}"
    if frame_size is not None:
        hint += f" --set data.frame_size=[{frame_size[0]},{frame_size[1]}]"
    print(f"train with: {hint}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lift.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="decode a dataset into the frame cache ahead of training")
    p.add_argument("dataset", help=f"one of: {', '.join(available_datasets())}")
    p.add_argument("--root", default=None, help="dataset folder (data.data_root); optional for "
                                                "video_folder (embedded clips) and synthetic")
    p.add_argument("--out", required=True, help="frame cache folder; train with --set data.cache_dir=OUT")
    p.add_argument("--frame_size", nargs=2, type=int, metavar=("H", "W"), default=None,
                   help="resize frames on decode (must match data.frame_size when training)")
    p.add_argument("--config", default=None, help="config preset or YAML file (for data.* settings)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. data.ucf_split=2 (repeatable)")
    p.add_argument("--on_bad_video", choices=("skip", "error"), default="skip",
                   help="skip (list at the end) or stop at the first bad input")
    args = parser.parse_args(argv)
    try:
        return prepare(args.dataset, args.root, args.out, frame_size=args.frame_size, config=args.config,
                       overrides=args.overrides, on_bad_video=args.on_bad_video)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
