"""The `python -m lift.interpolate` command line: check the paths, load the checkpoint, interpolate.

The package's `__main__`, apart from the streaming code (lift/interpolate/__init__.py) so that it
reads without the argument handling and nothing in the package imports the command line.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

from lift.interpolate import (EDGE_POLICIES, FACTORS, InterpolateError, check_distinct_paths, interpolate_video,
                              load_model, load_pretrained, output_paths, resolve_amp, resolve_device)
from lift.model.pretrained import PRETRAINED
from lift.video_io import FrameReader, VideoIOError, check_writable


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lift.interpolate",
                                description="Interpolate a video (or a folder of frames) with a LIFT checkpoint "
                                            "or the published RIFE HD model.")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="checkpoint written by lift.train (e.g. run/checkpoints/best.pt)")
    model.add_argument("--pretrained", choices=PRETRAINED,
                       help="the published model, untrained (rife_hd: RIFE HD, --factor 2 only; weights from "
                            "make rife-weights)")
    p.add_argument("--input", required=True, help="video file PyAV can decode, or a folder of images (sorted by name)")
    p.add_argument("--output", required=True, help="output video file (.mp4, .mkv, ...)")
    p.add_argument("--factor", type=int, default=2, choices=FACTORS, help="frame-rate multiplier (default 2)")
    p.add_argument("--window", type=int, default=None,
                   help="frames per window incl. the target; default and maximum: the checkpoint's window")
    p.add_argument("--ref_offset", type=int, default=None,
                   help="input frames between consecutive references (default: the checkpoint's temporal_offset)")
    p.add_argument("--edge", choices=EDGE_POLICIES, default="shrink",
                   help="clip edges: shrink = shorter window where references fall outside (default); "
                        "mirror = reflect references back into the video")
    p.add_argument("--fps", type=str, default=None,
                   help="input frame rate, e.g. 24 or 30000/1001: for frame folders (default 25), or to override "
                        "a video's rate")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                   help="autocast precision: auto = bf16 on CUDA, off on CPU")
    p.add_argument("--batch_size", type=int, default=None,
                   help="predicted frames per forward pass (default: one anchor pair on CPU, 4 pairs on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA: reduce-overhead graphs)")
    p.add_argument("--cuda_graph", action="store_true", help="capture and replay CUDA graphs (CUDA only)")
    p.add_argument("--lossless", action="store_true",
                   help="lossless encoding (x264 qp=0, or ffv1 for .mkv): original frames come out bit-exact")
    p.add_argument("--montage", nargs="?", const=True, default=None, metavar="PATH",
                   help="also write input | output side by side (default path: <output stem>.montage<suffix>)")
    p.add_argument("--no_audio", action="store_true", help="do not copy the audio stream(s)")
    p.add_argument("--deterministic", action="store_true",
                   help="byte-identical output across runs (single-threaded encoder, deterministic cuDNN)")
    p.add_argument("--max_frames", type=int, default=None, help="interpolate only the first N input frames")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _parse_fps(text: str | None) -> Fraction | None:
    if text is None:
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError) as err:
        raise InterpolateError(f"--fps {text!r}: expected a positive number or fraction such as 30000/1001") from err
    if value <= 0:
        raise InterpolateError(f"--fps {text!r}: expected a positive frame rate")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fps = _parse_fps(args.fps)
        device = resolve_device(args.device)
        amp_dtype = resolve_amp(args.amp, device)
        # Cheap checks first: a bad input or output path must not wait for the model to load.
        if not Path(args.input).exists():
            raise InterpolateError(f"input {args.input} does not exist")
        outputs = output_paths(Path(args.output), args.montage)
        inputs = {"--input": Path(args.input)}
        if args.checkpoint is not None:
            inputs["--checkpoint"] = Path(args.checkpoint)
        check_distinct_paths(inputs, outputs)
        for path in outputs.values():
            check_writable(path)
        with FrameReader(args.input, fps=fps):
            pass  # unreadable input or no video stream: fail before loading the model
        if args.pretrained is not None:
            model, cfg = load_pretrained(args.pretrained, device)
        else:
            model, cfg = load_model(args.checkpoint, device)
        ref_offset = args.ref_offset if args.ref_offset is not None else cfg.data.temporal_offset
        result = interpolate_video(
            model, args.input, args.output, factor=args.factor, window=args.window, ref_offset=ref_offset,
            edge=args.edge, device=device, amp_dtype=amp_dtype, batch_size=args.batch_size,
            lossless=args.lossless, montage=args.montage, audio=not args.no_audio, fps=fps,
            progress=not args.quiet, compile=args.compile, cuda_graph=args.cuda_graph,
            deterministic=args.deterministic, max_frames=args.max_frames)
    except (InterpolateError, VideoIOError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # The writers drop their temporaries on any exception (lift.video_io): no partial video.
        print(f"\ninterrupted: {args.output} was not written (nothing partial is left); run the command again",
              file=sys.stderr)
        return 130
    print(result.summary())
    if result.montage is not None:
        print(f"wrote montage {result.montage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
