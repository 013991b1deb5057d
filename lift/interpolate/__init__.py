"""Interpolate a real video with a trained LIFT checkpoint.

    python -m lift.interpolate --checkpoint C --input V --output O [--factor 2|4|8] [--window N]

Frame schedule. Input frames 0..n-1 at rate r give ``factor * n`` output frames at ``factor * r``:
output frame ``factor*i`` is input frame ``i`` (passed through from its decoded pixels), output
frames ``factor*i + k`` (k = 1..factor-1) are predicted at timestep ``k / factor`` between the
anchors ``i`` and ``i+1``, and the last input frame is held for ``factor`` output frames, so the
output lasts exactly as long as the input (n / r seconds) and every original frame keeps its
timestamp (audio stays in sync).

References. Between anchors ``i`` and ``i+1`` (one input frame apart, the unit of the model's
times) the k-th reference pair is input frame ``i - d*k`` (time ``-d*k``) and ``i+1 + d*k``
(time ``1 + d*k``), k = 1..K with K = (window - 3) / 2 and d = ``ref_offset`` (default: the
checkpoint's temporal offset). The model receives the true relative times.

Clip edges (``edge="shrink"``, the default): where a reference would fall outside the video, the
pair runs with the largest symmetric window that fits (K' = min(K, i // d, (n-2-i) // d)
references per side, window 2K'+3, down to 3 = anchors only). LIFT shares its reference weights,
so one trained model runs with fewer references; the windows used are counted in the result.
``edge="mirror"`` keeps the full window and reflects out-of-range references back into the
video (frame -j -> j, n-1+j -> n-1-j) with their nominal times.

Streaming. Only a sliding buffer of decoded frames is kept: at most
``2 + 2*d*K + pairs_per_batch - 1`` frames (the window's span plus the extra pairs of one batch),
whatever the video length; ``InterpolationResult.peak_buffered_frames`` reports the maximum.

Originals are re-encoded. With ``lossless=True`` (x264 qp=0 in the source's pixel format, or ffv1
for .mkv) decoding the output gives back the input's decoded frames bit-exactly; the default
(x264 crf 18 for h264 sources) keeps them within codec tolerance.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lift import devices
from lift.checkpoint import CheckpointError, model_from_checkpoint
from lift.config import Config, ConfigError, load_config
from lift.logging.progress import Progress
from lift.model import InputPadder, build_model
from lift.model.pretrained import PretrainedUnavailableError
from lift.video_io import FrameReader, SourceFrame, VideoWriter, check_writable, choose_encoder
from lift.window import WindowError, WindowSpec, check_window

FACTORS = (2, 4, 8)
EDGE_POLICIES = ("shrink", "mirror")


class InterpolateError(ValueError):
    """Bad input for interpolation (checkpoint, options, video); the message says which and why."""


# ---------------------------------------------------------------------------------------------
# Frame schedule
# ---------------------------------------------------------------------------------------------

def references_for_pair(pair: int, num_frames: int | None, refs: int, ref_offset: int) -> int:
    """References per side that fit around anchors (pair, pair+1) in a video of `num_frames`.

    `num_frames=None` means the end of the video is not known yet: the caller guarantees that the
    frames up to ``pair + 1 + refs*ref_offset`` exist.
    """
    left = pair // ref_offset
    right = refs if num_frames is None else (num_frames - 2 - pair) // ref_offset
    return max(0, min(refs, left, right))


def pair_inputs(pair: int, refs: int, ref_offset: int) -> tuple[list[int], list[float]]:
    """Input frame indices and their times for anchors (pair, pair+1) with `refs` per side,
    in the model's order: left anchor, right anchor, left refs k=1..K, right refs k=1..K."""
    ks = range(1, refs + 1)
    indices = [pair, pair + 1] + [pair - ref_offset * k for k in ks] + [pair + 1 + ref_offset * k for k in ks]
    times = [0.0, 1.0] + [-float(ref_offset * k) for k in ks] + [1.0 + ref_offset * k for k in ks]
    return indices, times


def mirror_index(index: int, num_frames: int) -> int:
    """Reflect an index outside [0, n-1] back into the video (about the first/last frame)."""
    last = num_frames - 1
    if index < 0:
        index = -index
    if index > last:
        index = 2 * last - index
    return min(max(index, 0), last)


def output_frame_count(num_frames: int, factor: int) -> int:
    """Frames written for `num_frames` input frames (the last input frame is held `factor` times)."""
    return factor * num_frames


def buffer_capacity(window: int, ref_offset: int, pairs_per_batch: int) -> int:
    """Most decoded frames held at once: the window's span (anchors one frame apart) plus the
    extra pairs of one batch."""
    return 2 + 2 * WindowSpec(window, ref_offset).reach + pairs_per_batch - 1


# ---------------------------------------------------------------------------------------------
# Model loading and running
# ---------------------------------------------------------------------------------------------

def resolve_device(name: str) -> torch.device:
    try:
        return devices.resolve_device(name, "--device")
    except ConfigError as err:
        raise InterpolateError(str(err)) from None


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """--amp -> autocast dtype, by the inference policy of lift.devices.autocast_dtype (auto: bf16
    on CUDA cards that support it, full precision on CPU)."""
    try:
        return devices.autocast_dtype(amp, device, "inference", "--amp")
    except ConfigError as err:
        raise InterpolateError(str(err)) from None


def load_model(checkpoint: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Config]:
    """A LIFT training checkpoint loaded for inference (``lift.checkpoint.model_from_checkpoint``).

    Raises InterpolateError naming the checkpoint when the file is not such a checkpoint or its
    weights do not fit the architecture its config describes (missing / unexpected / reshaped keys).
    """
    try:
        return model_from_checkpoint(checkpoint, device)
    except CheckpointError as err:
        raise InterpolateError(str(err)) from err


def load_pretrained(name: str, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Config]:
    """The published model `name` (rife_hd), untrained, as a window-3 LIFT network for inference;
    InterpolateError says how to fetch missing weights."""
    try:
        cfg = load_config(None, {"model.pretrained": name, "data.window": 3})
        return build_model(cfg.model, 3).to(device).eval(), cfg
    except (ConfigError, PretrainedUnavailableError) as err:
        raise InterpolateError(f"--pretrained {name}: {err}") from None


class Predictor:
    """Runs the model on padded batches: autocast, optional torch.compile or CUDA-graph replay.

    `compile`: torch.compile (mode "reduce-overhead" on CUDA, which captures CUDA graphs itself).
    `cuda_graph`: capture one CUDA graph per input shape and replay it (shapes repeat: every
    interior pair of a video has the same window and size; edge pairs add a few more graphs).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, amp_dtype: torch.dtype | None = None,
                 compile: bool = False, cuda_graph: bool = False) -> None:
        if cuda_graph and device.type != "cuda":
            raise InterpolateError("--cuda_graph needs a CUDA device")
        if cuda_graph and compile:
            raise InterpolateError("--cuda_graph and --compile exclude each other (compile on CUDA already "
                                   "uses CUDA graphs)")
        self.model = model
        self.device = device
        self.amp_dtype = amp_dtype
        self.cuda_graph = cuda_graph
        self._graphs: dict[tuple, tuple[Any, tuple[torch.Tensor, ...], torch.Tensor]] = {}
        self._forward: Callable[..., Any] = model
        if compile:
            mode = "reduce-overhead" if device.type == "cuda" else "default"
            self._forward = torch.compile(model, mode=mode, dynamic=False)

    def _eager(self, frames: torch.Tensor, times: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        # The autocast weight cache is incompatible with graph capture (cached casts would be
        # freed after capture while the graph still points at them).
        with devices.autocast(self.device, self.amp_dtype, cache_enabled=not self.cuda_graph):
            pred, _ = self._forward(frames, times, timestep)
        return pred

    def __call__(self, frames: torch.Tensor, times: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """frames [B, N, 3, Hp, Wp] float in [0, 1] on the device -> prediction [B, 3, Hp, Wp] float32."""
        with torch.inference_mode():
            if not self.cuda_graph:
                return self._eager(frames, times, timestep).float()
            return self._replay(frames, times, timestep)

    def _replay(self, frames: torch.Tensor, times: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        key = (tuple(frames.shape), frames.dtype)
        if key not in self._graphs:
            static = (frames.clone(), times.clone(), timestep.clone())
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside capture (cuDNN autotuning, allocator)
                    self._eager(*static)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    out = self._eager(*static).float()
            except RuntimeError as err:
                reason = str(err).strip().splitlines()[0]
                raise InterpolateError(f"--cuda_graph: the model cannot be captured in a CUDA graph ({reason}); "
                                       "run without it, or with --compile") from err
            self._graphs[key] = (graph, static, out)
        graph, static, out = self._graphs[key]
        for dst, src in zip(static, (frames, times, timestep)):
            dst.copy_(src)
        graph.replay()
        return out.clone()


# ---------------------------------------------------------------------------------------------
# Streaming buffer
# ---------------------------------------------------------------------------------------------

@dataclass
class _Entry:
    source: SourceFrame
    tensor: torch.Tensor  # [3, Hp, Wp] float in [0, 1] on the device, padded


class FrameBuffer:
    """Decoded frames by index, loaded on demand from a frame iterator, evicted from the left.

    `peak` counts the most frames ever held at once (the streaming-memory guarantee).
    """

    def __init__(self, frames: Iterator[SourceFrame], to_tensor: Callable[[np.ndarray], torch.Tensor]) -> None:
        self._iter = frames
        self._to_tensor = to_tensor
        self._entries: dict[int, _Entry] = {}
        self._next = 0
        self.length: int | None = None  # known once the iterator is exhausted
        self.peak = 0

    def ensure(self, index: int) -> None:
        """Decode until frame `index` is held or the video ends."""
        while self.length is None and self._next <= index:
            item = next(self._iter, None)
            if item is None:
                self.length = self._next
                break
            self._entries[self._next] = _Entry(item, self._to_tensor(item.rgb))
            self._next += 1
            self.peak = max(self.peak, len(self._entries))

    def evict_before(self, index: int) -> None:
        for key in [k for k in self._entries if k < index]:
            del self._entries[key]

    def __getitem__(self, index: int) -> _Entry:
        try:
            return self._entries[index]
        except KeyError:
            raise IndexError(f"frame {index} is not buffered (held: {sorted(self._entries)})") from None

    def __len__(self) -> int:
        return len(self._entries)


# ---------------------------------------------------------------------------------------------
# The interpolation run
# ---------------------------------------------------------------------------------------------

@dataclass
class InterpolationResult:
    output: Path
    montage: Path | None
    input_frames: int
    output_frames: int
    input_fps: Fraction
    output_fps: Fraction
    factor: int
    window: int
    ref_offset: int
    edge: str
    # Pairs of anchors run with each window (edges use shorter windows with edge="shrink").
    windows_used: dict[int, int] = field(default_factory=dict)
    peak_buffered_frames: int = 0
    buffer_capacity: int = 0
    encoder: str = ""
    pix_fmt: str = ""
    audio_streams: int = 0
    audio_packets: int = 0
    seconds: float = 0.0

    @property
    def frames_per_s(self) -> float:
        return self.output_frames / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        windows = ", ".join(f"window {w}: {c} pairs" for w, c in sorted(self.windows_used.items(), reverse=True))
        audio = (f"{self.audio_streams} audio stream(s) copied ({self.audio_packets} packets)"
                 if self.audio_streams else "no audio")
        return (f"wrote {self.output}: {self.input_frames} -> {self.output_frames} frames, "
                f"{float(self.input_fps):.4g} -> {float(self.output_fps):.4g} fps ({self.encoder}, {self.pix_fmt}), "
                f"{audio}; {windows} (edge policy {self.edge}, reference offset {self.ref_offset}); "
                f"{self.frames_per_s:.2f} output frames/s, at most {self.peak_buffered_frames} frames buffered")


def _montage_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.montage{output.suffix}")


def _same_file(a: Path, b: Path) -> bool:
    """The same file, as resolved paths (symlinks, `./x` vs `x`) or as an existing inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_distinct_paths(inputs: dict[str, Path], outputs: dict[str, Path]) -> None:
    """Every output differs from every input (no input is ever overwritten), lies outside input
    folders, and differs from every other output. Keys name the options, for the message."""
    for out_name, out in outputs.items():
        for in_name, src in inputs.items():
            if _same_file(out, src):
                raise InterpolateError(f"{out_name} {out} is the same file as {in_name} {src}; it would be "
                                       "overwritten; choose another output path")
            if src.is_dir() and out.resolve().is_relative_to(src.resolve()):
                raise InterpolateError(f"{out_name} {out} lies inside the {in_name} folder {src}; choose an "
                                       "output path outside it")
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if _same_file(outputs[a], outputs[b]):
                raise InterpolateError(f"{a} and {b} are the same file ({outputs[a]}); choose two different paths")


def output_paths(output: Path, montage: str | Path | bool | None) -> dict[str, Path]:
    """The files a run writes, keyed by the option that names them (--output, --montage)."""
    outputs = {"--output": output}
    if montage:
        outputs["--montage"] = _montage_path(output) if montage is True else Path(montage)
    return outputs


def _check_options(factor: int, edge: str, window: int | None, model_window: int, ref_offset: int) -> WindowSpec:
    """The window to run (default: the model's), after checking the options against the model."""
    if factor not in FACTORS:
        raise InterpolateError(f"factor={factor!r}: expected one of {', '.join(map(str, FACTORS))}")
    if edge not in EDGE_POLICIES:
        raise InterpolateError(f"edge={edge!r}: expected one of {', '.join(EDGE_POLICIES)}")
    window = model_window if window is None else int(window)
    if ref_offset < 1:
        raise InterpolateError(f"--ref_offset {ref_offset}: expected an integer >= 1")
    try:
        spec = WindowSpec(check_window(window, "--window"), ref_offset)
    except WindowError as err:
        raise InterpolateError(str(err)) from None
    if window > model_window:
        raise InterpolateError(f"--window {window}: expected at most the checkpoint's window ({model_window})")
    return spec


def _next_pairs(pair: int, num_frames: int | None, pairs_per_batch: int, refs: int, ref_offset: int,
                edge: str) -> list[tuple[int, list[int], list[float]]]:
    """(pair, input indices, times) of the anchor pairs of the next batch, from `pair` on: at most
    `pairs_per_batch`, all with the same window size (the first pair's)."""
    batch: list[tuple[int, list[int], list[float]]] = []
    for p in range(pair, pair + pairs_per_batch):
        if num_frames is not None and p >= num_frames - 1:
            break
        if edge == "shrink":
            indices, times = pair_inputs(p, references_for_pair(p, num_frames, refs, ref_offset), ref_offset)
        else:
            indices, times = pair_inputs(p, refs, ref_offset)
            if num_frames is not None:
                indices = [mirror_index(i, num_frames) for i in indices]
            indices = [abs(i) for i in indices]  # left edge: reflect about frame 0
        if batch and len(indices) != len(batch[0][1]):
            break  # a batch needs one window size
        batch.append((p, indices, times))
    return batch


class _Outputs:
    """The output video (and montage) being written, the progress bar, and the result's counts."""

    def __init__(self, info: Any, output: Path, montage_path: Path | None, out_fps: Fraction, encoder: Any,
                 audio_source: Path | None, lossless: bool, deterministic: bool) -> None:
        width, height = info.width, info.height
        self.writer = VideoWriter(output, out_fps, width, height, encoder, audio_source=audio_source,
                                  start_time=info.start_time, bitexact=deterministic)
        self.montage: VideoWriter | None = None
        self.frames = 0
        try:
            if montage_path is not None:
                m_enc = choose_encoder(info.codec, "rgb24" if lossless else info.pix_fmt, montage_path,
                                       lossless=lossless, width=2 * width, height=height,
                                       deterministic=deterministic)
                self.montage = VideoWriter(montage_path, out_fps, 2 * width, height, m_enc, bitexact=deterministic)
        except BaseException:
            self.writer.abort()
            raise

    def emit(self, original: SourceFrame, frame: SourceFrame | np.ndarray) -> None:
        """One output frame (a passed-through original or a prediction), montage beside its input."""
        self.writer.write(frame.frame if isinstance(frame, SourceFrame) else frame)
        if self.montage is not None:
            right = frame.rgb if isinstance(frame, SourceFrame) else frame
            self.montage.write(np.concatenate((original.rgb, right), axis=1))
        self.frames += 1

    def close(self, audio_end_s: float | None) -> None:
        self.writer.close(audio_end_s=audio_end_s)
        if self.montage is not None:
            self.montage.close()

    def abort(self) -> None:
        self.writer.abort()
        if self.montage is not None:
            self.montage.abort()


@dataclass
class _Job:
    """The fixed settings of one interpolation run."""

    predictor: Predictor
    padder: InputPadder
    device: torch.device
    factor: int
    refs: int
    ref_offset: int
    edge: str
    pairs_per_batch: int

    @property
    def reach(self) -> int:
        return self.ref_offset * self.refs


def _predict(job: _Job, buffer: FrameBuffer, batch: list[tuple[int, list[int], list[float]]]) -> np.ndarray:
    """The predicted frames of `batch` ([pairs * (factor-1), H, W, 3] uint8), pair by pair."""
    per_pair = job.factor - 1
    frames = torch.stack([torch.stack([buffer[i].tensor for i in idx]) for _, idx, _ in batch])
    frames = frames.repeat_interleave(per_pair, dim=0)
    times = torch.tensor([t for _, _, t in batch], dtype=torch.float32, device=job.device)
    times = times.repeat_interleave(per_pair, dim=0)
    timesteps = torch.tensor([k / job.factor for k in range(1, job.factor)], dtype=torch.float32, device=job.device)
    pred = job.padder.unpad(job.predictor(frames, times, timesteps.repeat(len(batch))))
    return pred.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _run_pairs(job: _Job, buffer: FrameBuffer, out: _Outputs, bar: Progress,
               result: InterpolationResult) -> int:
    """Write every anchor pair's original and predictions, then the held last frame; returns the
    number of input frames."""
    pair = 0
    while True:
        buffer.evict_before(pair - job.reach)
        buffer.ensure(pair + job.pairs_per_batch + job.reach)
        n = buffer.length
        if n is not None and pair >= n - 1:
            break
        if n is not None and bar.total is None:
            bar.set_total(output_frame_count(n, job.factor))
        batch = _next_pairs(pair, n, job.pairs_per_batch, job.refs, job.ref_offset, job.edge)
        images = _predict(job, buffer, batch)
        for b, (p, idx, _) in enumerate(batch):
            result.windows_used[len(idx) + 1] = result.windows_used.get(len(idx) + 1, 0) + 1
            original = buffer[p].source
            out.emit(original, original)
            bar.update(1)
            for j in range(job.factor - 1):
                out.emit(original, images[b * (job.factor - 1) + j])
                bar.update(1)
        pair += len(batch)
    last = buffer[n - 1].source
    for _ in range(job.factor):  # hold the last frame: output duration = input duration
        out.emit(last, last)
        bar.update(1)
    return n


def interpolate_video(model: torch.nn.Module, input: str | Path, output: str | Path, *, factor: int = 2,
                      window: int | None = None, ref_offset: int = 1, edge: str = "shrink",
                      device: torch.device | str = "cpu", amp_dtype: torch.dtype | None = None,
                      batch_size: int | None = None, lossless: bool = False,
                      montage: str | Path | bool | None = None, audio: bool = True,
                      fps: Fraction | float | None = None, progress: bool = True, compile: bool = False,
                      cuda_graph: bool = False, deterministic: bool = False,
                      max_frames: int | None = None) -> InterpolationResult:
    """Interpolate `input` (video file or image folder) by `factor` into `output` (see module doc).

    `window`: frames per window including the target (default: the model's); at most the model's.
    `batch_size`: predicted frames per forward pass, rounded down to whole anchor pairs (default:
    one pair on CPU, 4 pairs on CUDA). `montage`: True (next to the output as
    ``<stem>.montage<suffix>``) or a path: input | output side by side, inputs held.
    `deterministic`: two runs write byte-identical files (one encoder thread, bit-exact muxing,
    deterministic cuDNN); without it the decoded frames of lossless runs are identical anyway.
    `max_frames`: use only the first input frames (a preview; the audio is cut at the same time).
    """
    spec = _check_options(factor, edge, window, int(getattr(model, "window", 3)), ref_offset)
    if getattr(model, "backbone", "rife_m") == "rife_hd" and factor != 2:
        raise InterpolateError(f"--factor {factor}: this model (model.backbone rife_hd, the published RIFE HD) "
                               "interpolates the middle frame only; use --factor 2")
    window = spec.window
    device = torch.device(device)
    input, output = Path(input), Path(output)
    outputs = output_paths(output, montage)
    check_distinct_paths({"--input": input}, outputs)
    for path in outputs.values():
        check_writable(path)
    if deterministic and device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    model.eval()
    per_pair = factor - 1
    if batch_size is None:
        batch_size = per_pair * (4 if device.type == "cuda" else 1)
    if batch_size < 1:
        raise InterpolateError(f"--batch_size {batch_size}: expected >= 1")
    if max_frames is not None and max_frames < 2:
        raise InterpolateError(f"--max_frames {max_frames}: expected at least 2")
    predictor = Predictor(model, device, amp_dtype, compile=compile, cuda_graph=cuda_graph)
    with FrameReader(input, fps=fps) as reader:
        padder = InputPadder((reader.info.height, reader.info.width), int(getattr(model, "size_multiple", 1)),
                             str(getattr(model, "pad_mode", "replicate")))
        job = _Job(predictor, padder, device, factor, spec.refs_per_side, ref_offset, edge,
                   max(1, batch_size // per_pair))
        return _interpolate_stream(job, reader, input, output, outputs.get("--montage"), window=window,
                                   lossless=lossless, audio=audio, progress=progress, deterministic=deterministic,
                                   max_frames=max_frames)


def _interpolate_stream(job: _Job, reader: FrameReader, input: Path, output: Path, montage_path: Path | None, *,
                        window: int, lossless: bool, audio: bool, progress: bool, deterministic: bool,
                        max_frames: int | None) -> InterpolationResult:
    """Decode, predict and encode `reader`'s frames (see interpolate_video)."""
    info = reader.info
    out_fps = info.fps * job.factor
    encoder = choose_encoder(info.codec, info.pix_fmt, output, lossless=lossless, width=info.width,
                             height=info.height, deterministic=deterministic)
    audio_source = info.path if (audio and info.audio_streams and info.kind == "video") else None

    def to_tensor(rgb: np.ndarray) -> torch.Tensor:
        return job.padder.pad(torch.from_numpy(rgb).to(job.device).permute(2, 0, 1).float().div_(255.0))[0]

    frames_iter: Iterator[SourceFrame] = iter(reader)
    if max_frames is not None:
        frames_iter = itertools.islice(frames_iter, max_frames)
    buffer = FrameBuffer(frames_iter, to_tensor)
    buffer.ensure(1)
    if buffer.length is not None and buffer.length < 2:
        raise InterpolateError(f"input {input} has {buffer.length} frame(s); interpolation needs at least 2")
    out = _Outputs(info, output, montage_path, out_fps, encoder, audio_source, lossless, deterministic)
    try:
        known = min(info.num_frames, max_frames or info.num_frames) if info.num_frames else None
        bar = _progress_bar(output_frame_count(known, job.factor) if known else None, progress)
        result = InterpolationResult(
            output=output, montage=montage_path, input_frames=0, output_frames=0, input_fps=info.fps,
            output_fps=out_fps, factor=job.factor, window=window, ref_offset=job.ref_offset, edge=job.edge,
            buffer_capacity=buffer_capacity(window, job.ref_offset, job.pairs_per_batch), encoder=encoder.codec,
            pix_fmt=encoder.pix_fmt)
        start = time.perf_counter()
        n = _run_pairs(job, buffer, out, bar, result)
        bar.close()
        result.input_frames, result.output_frames, result.peak_buffered_frames = n, out.frames, buffer.peak
        result.audio_streams = out.writer.audio_streams
        truncated = max_frames is not None and n == max_frames
        out.close(audio_end_s=float(Fraction(n) / info.fps) if truncated else None)
        result.audio_packets = out.writer.audio_packets
        result.seconds = time.perf_counter() - start
        return result
    except BaseException:
        out.abort()
        raise


def _progress_bar(total: int | None, enabled: bool) -> Progress:
    return Progress(total, desc="interpolate", mode="auto" if enabled else "off", interval_s=10.0, unit="frame")
