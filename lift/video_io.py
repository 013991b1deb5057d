"""Streaming video input and output for interpolation (PyAV).

Reading yields one decoded frame at a time (a video file PyAV can decode, or a folder of images in
sorted file-name order), so a caller that keeps a bounded buffer never holds the whole video.
Writing encodes frames as they come, copies the source's audio packets without re-encoding
(interleaved by time as the video advances), and renames a temporary file onto the destination
only when the file is complete: an interrupted run never leaves a truncated video under the
requested name.

Frame indices are 0-based in decoder output order (the data layer's convention).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from lift.atomic import publish, temporary_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Source codec -> encoder of the same family (first one PyAV has wins), else the fallbacks.
_ENCODER_FAMILIES: dict[str, tuple[str, ...]] = {
    "h264": ("libx264", "h264"),
    "hevc": ("libx265", "hevc"),
    "vp9": ("libvpx-vp9", "vp9"),
    "vp8": ("libvpx", "vp8"),
    "av1": ("libaom-av1", "libsvtav1", "librav1e"),
    "mpeg4": ("mpeg4",),
    "mjpeg": ("mjpeg",),
    "ffv1": ("ffv1",),
    "png": ("png",),
}
_FALLBACK_ENCODERS = ("libx264", "mpeg4")
# Containers that take only some codecs: their encoders come first whatever the source's family.
_CONTAINER_ENCODERS: dict[str, tuple[str, ...]] = {".webm": ("libvpx-vp9", "libvpx")}
# Containers that cannot carry the x264 family's mp4-style streams well get ffv1 when lossless.
_FFV1_CONTAINERS = (".mkv", ".nut", ".avi")
_SUBSAMPLED = ("yuv420p", "yuvj420p", "nv12", "nv21", "yuv422p", "yuvj422p", "yuv411p", "yuv410p")


class VideoIOError(ValueError):
    """A video or frame folder cannot be read or written; the message names the path and why."""


@dataclass(frozen=True)
class SourceInfo:
    path: Path
    kind: str  # "video" or "frames"
    width: int
    height: int
    fps: Fraction
    # Frames the container announces (None when it does not say: counted while decoding).
    num_frames: int | None
    # The decoder's pixel format ("rgb24" for image folders): lossless output keeps it.
    pix_fmt: str
    codec: str | None
    audio_streams: int
    # Presentation time of the first video frame, in seconds (0 for frame folders).
    start_time: float


@dataclass
class SourceFrame:
    index: int
    rgb: np.ndarray  # [H, W, 3] uint8
    # The decoded frame itself, so original frames are re-encoded from their own pixels (no RGB
    # round trip): with a lossless encoder they come out bit-exact.
    frame: av.VideoFrame


def _rational(value: Any) -> Fraction | None:
    if value is None:
        return None
    try:
        f = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if f > 0 else None


class FrameReader:
    """Iterate the frames of a video file or an image folder, one at a time.

    `fps` is required information for image folders (default 25) and overrides the container's
    rate for videos when given (variable-frame-rate videos are treated as constant at their
    average rate: interpolation regenerates timestamps).
    """

    def __init__(self, path: str | Path, fps: Fraction | float | None = None) -> None:
        self.path = Path(path)
        self._container: av.container.InputContainer | None = None
        self._files: list[Path] = []
        if not self.path.exists():
            raise VideoIOError(f"input {self.path} does not exist")
        if self.path.is_dir():
            self.info = self._open_folder(fps)
        else:
            self.info = self._open_video(fps)

    def _open_video(self, fps: Fraction | float | None) -> SourceInfo:
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise VideoIOError(f"cannot read video {self.path}: {err}") from err
        if not container.streams.video:
            kinds = ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams) or "none"
            container.close()
            raise VideoIOError(f"{self.path} has no video stream (streams: {kinds})")
        self._container = container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = _rational(fps) or _rational(stream.average_rate) or _rational(stream.guessed_rate)
        if rate is None:
            raise VideoIOError(f"{self.path}: the video stream has no frame rate; pass one (--fps)")
        ctx = stream.codec_context
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if not ctx.width or not ctx.height:
            raise VideoIOError(f"{self.path}: the video stream has no frame size (corrupt header?)")
        return SourceInfo(
            path=self.path, kind="video", width=ctx.width, height=ctx.height, fps=rate,
            num_frames=stream.frames or None, pix_fmt=ctx.pix_fmt or "yuv420p", codec=ctx.name,
            audio_streams=len(container.streams.audio), start_time=start,
        )

    def _open_folder(self, fps: Fraction | float | None) -> SourceInfo:
        self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise VideoIOError(f"input folder {self.path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        try:
            with Image.open(self._files[0]) as im:
                width, height = im.size
        except OSError as err:
            raise VideoIOError(f"cannot read image {self._files[0]}: {err}") from err
        rate = _rational(fps) if fps is not None else Fraction(25)
        if rate is None:
            raise VideoIOError(f"--fps {fps!r}: expected a positive frame rate")
        return SourceInfo(path=self.path, kind="frames", width=width, height=height, fps=rate,
                          num_frames=len(self._files), pix_fmt="rgb24", codec=None, audio_streams=0,
                          start_time=0.0)

    def __iter__(self) -> Iterator[SourceFrame]:
        if self._container is not None:
            return self._iter_video()
        return self._iter_folder()

    def _iter_video(self) -> Iterator[SourceFrame]:
        assert self._container is not None
        stream = self._container.streams.video[0]
        index = 0
        try:
            for frame in self._container.decode(stream):
                if (frame.width, frame.height) != (self.info.width, self.info.height):
                    raise VideoIOError(
                        f"{self.path}: frame {index} is {frame.width}x{frame.height}, but the stream started at "
                        f"{self.info.width}x{self.info.height}; size changes inside a video are not supported")
                yield SourceFrame(index, frame.to_ndarray(format="rgb24"), frame)
                index += 1
        except av.error.FFmpegError as err:
            raise VideoIOError(f"cannot decode {self.path} at frame {index}: {err}") from err

    def _iter_folder(self) -> Iterator[SourceFrame]:
        for index, path in enumerate(self._files):
            try:
                with Image.open(path) as im:
                    rgb = np.array(im.convert("RGB"))  # a writable copy (torch.from_numpy needs one)
            except OSError as err:
                raise VideoIOError(f"cannot read image {path}: {err}") from err
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise VideoIOError(
                    f"image {path} is {rgb.shape[1]}x{rgb.shape[0]}, but {self._files[0].name} is "
                    f"{self.info.width}x{self.info.height}; every frame of a folder must have the same size")
            yield SourceFrame(index, rgb, av.VideoFrame.from_ndarray(rgb, format="rgb24"))

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class EncoderChoice:
    codec: str
    pix_fmt: str
    options: dict[str, str]


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def _encoder_formats(name: str) -> list[str]:
    formats = av.codec.Codec(name, "w").video_formats or []
    return [f.name for f in formats]


def choose_encoder(source_codec: str | None, source_pix_fmt: str, output: str | Path, *,
                   lossless: bool = False, width: int = 2, height: int = 2,
                   deterministic: bool = False) -> EncoderChoice:
    """Pick an encoder of the source's family and a pixel format it accepts.

    Lossy: the source family (h264 -> libx264, ...), else libx264, else mpeg4; the source's pixel
    format when the encoder takes it, else yuv420p (yuv444p for odd frame sizes). Lossless: ffv1
    for .mkv/.nut/.avi, VP9 lossless for .webm, else x264 at qp=0 in the source's pixel format
    (libx264rgb for RGB sources), so decoding the output gives back exactly the pixels that were
    encoded.

    `deterministic`: one encoder thread, so that two runs write byte-identical files.
    """
    choice = _choose_encoder(source_codec, source_pix_fmt, output, lossless=lossless, width=width, height=height)
    if deterministic:
        # Multi-threaded x264 with lookahead/mbtree is not byte-reproducible on every input;
        # one encoder thread is (the pixels fed to it are identical across runs either way).
        return EncoderChoice(choice.codec, choice.pix_fmt, {**choice.options, "threads": "1"})
    return choice


def _choose_encoder(source_codec: str | None, source_pix_fmt: str, output: str | Path, *,
                    lossless: bool, width: int, height: int) -> EncoderChoice:
    suffix = Path(output).suffix.lower()
    odd = width % 2 == 1 or height % 2 == 1
    if lossless:
        if suffix == ".webm" and _has_encoder("libvpx-vp9"):
            formats = _encoder_formats("libvpx-vp9")
            rgb = source_pix_fmt.startswith(("rgb", "bgr", "gbr"))
            fmt = source_pix_fmt if source_pix_fmt in formats else ("gbrp" if rgb else "yuv444p")
            return EncoderChoice("libvpx-vp9", fmt, {"lossless": "1"})
        if suffix in _FFV1_CONTAINERS and _has_encoder("ffv1"):
            fmt = source_pix_fmt if source_pix_fmt in _encoder_formats("ffv1") else (
                "bgr0" if source_pix_fmt.startswith(("rgb", "bgr", "gbr")) else "yuv444p")
            return EncoderChoice("ffv1", fmt, {"level": "3"})
        if source_pix_fmt in ("rgb24", "bgr24", "bgr0", "rgba", "bgra") and _has_encoder("libx264rgb"):
            return EncoderChoice("libx264rgb", "rgb24", {"qp": "0", "preset": "veryfast"})
        if _has_encoder("libx264"):
            formats = _encoder_formats("libx264")
            fmt = source_pix_fmt if source_pix_fmt in formats and not (odd and source_pix_fmt in _SUBSAMPLED) \
                else "yuv444p"
            return EncoderChoice("libx264", fmt, {"qp": "0", "preset": "veryfast"})
        raise VideoIOError(f"--lossless: no lossless encoder for {output} (need ffv1 for .mkv or libx264)")
    candidates = _CONTAINER_ENCODERS.get(suffix) or (_ENCODER_FAMILIES.get(source_codec or "", ()) + _FALLBACK_ENCODERS)
    for name in candidates:
        if not _has_encoder(name):
            continue
        formats = _encoder_formats(name)
        if not formats:
            continue
        if source_pix_fmt in formats and not (odd and source_pix_fmt in _SUBSAMPLED):
            fmt = source_pix_fmt
        elif odd:
            if "yuv444p" not in formats:
                continue
            fmt = "yuv444p"
        elif "yuv420p" in formats:
            fmt = "yuv420p"
        else:
            fmt = formats[0]
        options = {"crf": "18", "preset": "medium"} if name in ("libx264", "libx265") else {}
        if name == "mpeg4":
            options = {"qscale": "2"}
        if name.startswith("libvpx"):
            options = {"crf": "20", "b": "0"}
        return EncoderChoice(name, fmt, options)
    raise VideoIOError(f"no video encoder available for {output} (tried {', '.join(candidates)})")


def check_writable(path: str | Path) -> Path:
    """Fail early, before any decoding or inference, when the output cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise VideoIOError(f"output {path} is a directory; expected a video file name such as out.mp4")
    if not path.suffix:
        raise VideoIOError(f"output {path} has no file extension; expected e.g. .mp4 or .mkv")
    if path.parent.exists() and not path.parent.is_dir():
        raise VideoIOError(f"cannot write output {path}: {path.parent} is a file, not a folder")
    if not path.parent.is_dir():
        raise VideoIOError(f"cannot write output {path}: folder {path.parent} does not exist")
    try:
        temporary_path(path).unlink()
    except OSError as err:
        raise VideoIOError(f"cannot write output {path}: {err.strerror or err}") from None
    return path


class _AudioCopier:
    """Copies the audio packets of a source file into an output container, in time order.

    A second demuxer on the source reads only audio, so the packets can be interleaved with the
    video as it is produced (memory stays bounded) instead of being buffered to the end.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer, shift_s: float, dest: Path) -> None:
        self._input = av.open(str(source))
        self._streams = list(self._input.streams.audio)
        self._out = {}
        for stream in self._streams:
            try:
                self._out[stream.index] = output.add_stream_from_template(stream)
            except (av.error.FFmpegError, ValueError) as err:
                what = f"audio stream {stream.index} ({stream.codec_context.name})"
                self._input.close()
                raise VideoIOError(f"cannot copy {what} of {source} into {dest}: {err}; "
                                   "use another container (e.g. .mkv) or --no_audio") from err
        self._packets = self._input.demux(*self._streams)
        self._pending: av.Packet | None = None
        self._done = False
        self._shift_s = shift_s
        self.copied = 0

    @property
    def num_streams(self) -> int:
        return len(self._streams)

    def _time(self, packet: av.Packet) -> float:
        ts = packet.dts if packet.dts is not None else packet.pts
        return float(ts * packet.time_base) - self._shift_s

    def mux_until(self, output: av.container.OutputContainer, until_s: float | None) -> None:
        """Mux every audio packet that starts before `until_s` (all remaining ones if None)."""
        while not self._done:
            if self._pending is None:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    self._done = True
                    break
                if packet.dts is None and packet.pts is None:
                    continue  # demuxer flush packet: nothing to copy
                self._pending = packet
            if until_s is not None and self._time(self._pending) >= until_s:
                return
            packet, self._pending = self._pending, None
            out_stream = self._out[packet.stream.index]
            packet.stream = out_stream
            output.mux(packet)
            self.copied += 1

    def close(self) -> None:
        self._input.close()


class VideoWriter:
    """Encode frames at a constant rate into `path` (atomically), optionally copying audio.

    Frames get consecutive timestamps at `fps` in the order they are written; `write` accepts an
    `av.VideoFrame` (re-encoded from its own pixels) or an RGB uint8 array [H, W, 3]. Audio is
    shifted by `start_time` (the source video's first timestamp) so it stays in sync.
    """

    def __init__(self, path: str | Path, fps: Fraction, width: int, height: int, encoder: EncoderChoice, *,
                 audio_source: str | Path | None = None, start_time: float = 0.0, bitexact: bool = False) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps)
        self.width, self.height = width, height
        self.encoder = encoder
        self.frames_written = 0
        self._audio: _AudioCopier | None = None
        try:
            # Unique per writer (two writers never share a temporary); it keeps the target's
            # extension, from which the muxer picks the container format.
            self._tmp = temporary_path(self.path, suffix=f".tmp{self.path.suffix}")
        except OSError as err:
            raise VideoIOError(f"cannot write output {self.path}: {err.strerror or err}") from err
        try:
            # bitexact: no random ids (Matroska segment UID) or version strings in the file.
            self._container = av.open(str(self._tmp), "w", options={"fflags": "+bitexact"} if bitexact else None)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            self._tmp.unlink(missing_ok=True)
            raise VideoIOError(f"cannot write output {self.path}: {err}") from err
        try:
            self._stream = self._container.add_stream(encoder.codec, rate=self.fps)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = encoder.pix_fmt
            self._stream.options = dict(encoder.options)
            self._audio = (_AudioCopier(Path(audio_source), self._container, start_time, self.path)
                           if audio_source is not None else None)
        except BaseException as err:
            self._discard()
            if isinstance(err, (av.error.FFmpegError, ValueError)) and not isinstance(err, VideoIOError):
                raise VideoIOError(f"cannot set up encoder {encoder.codec} for {self.path}: {err}") from err
            raise
        self._time_base = Fraction(1) / self.fps

    @property
    def audio_streams(self) -> int:
        return self._audio.num_streams if self._audio is not None else 0

    @property
    def audio_packets(self) -> int:
        return self._audio.copied if self._audio is not None else 0

    def write(self, frame: av.VideoFrame | np.ndarray) -> None:
        if isinstance(frame, np.ndarray):
            if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
                raise ValueError(f"expected a uint8 RGB array of shape {(self.height, self.width, 3)}, "
                                 f"got {frame.dtype} {frame.shape}")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if frame.format.name != self.encoder.pix_fmt:
            frame = frame.reformat(format=self.encoder.pix_fmt)
        frame.pts = self.frames_written
        frame.time_base = self._time_base
        try:
            if self._audio is not None:
                self._audio.mux_until(self._container, float(self.frames_written * self._time_base))
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.error.FFmpegError as err:
            # The first mux writes the header: an audio codec the container cannot hold fails here.
            raise VideoIOError(f"cannot write {self.path} ({self.encoder.codec}"
                               f"{' + copied audio' if self._audio is not None else ''}): {err}") from err
        self.frames_written += 1

    def close(self, audio_end_s: float | None = None) -> Path:
        """Flush the encoder, copy the remaining audio (up to `audio_end_s` seconds if given, e.g.
        the end of a shortened video), and move the file into place."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.mux_until(self._container, audio_end_s)
                self._audio.close()
            self._container.close()
        except av.error.FFmpegError as err:
            self._discard()
            raise VideoIOError(f"cannot finish writing {self.path}: {err}") from err
        except BaseException:
            self._discard()
            raise
        publish(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (after an error); the destination is left untouched."""
        self._discard()

    def _discard(self) -> None:
        if self._audio is not None:
            self._audio.close()
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the container may be half-initialised; removal follows
            pass
        self._tmp.unlink(missing_ok=True)


def read_video_rgb(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, Fraction]:
    """Decode (the first `max_frames` frames of) a small video to [T, H, W, 3] uint8 and its rate.

    For tests and inspection of short clips only: it holds every frame in memory.
    """
    with FrameReader(path) as reader:
        frames = []
        for item in reader:
            frames.append(item.rgb)
            if max_frames is not None and len(frames) >= max_frames:
                break
        return np.stack(frames), reader.info.fps
