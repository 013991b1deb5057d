"""Exact sequential video decoding (PyAV), image reading, and the on-disk cache of decoded frames.

Frame ``i`` of a video is the ``i``-th frame the decoder outputs. Videos are always decoded from the
start, never seeked: AVI files with packed B-frames (UCF-101) carry shuffled or misleading timestamps,
and a timestamp seek lands on the wrong frame.

Every problem with an input file raises :class:`BadVideoError` naming the file and the reason: a file
that cannot be opened, a decode error, a frame flagged corrupt by the decoder, fewer decodable frames
than the container declares (truncation; a shortfall within :func:`frame_allowance` is accepted, as
real MP4s often declare a frame more than they hold), a frame size that changes inside one video. Grayscale
input is converted to RGB by replicating the channel, with a logged warning naming the file.

The cache stores each decoded video (or resized image sequence) as one ``uint8`` ``.npy`` array
``[T, H, W, 3]`` under ``data.cache_dir``. The key covers the resolved path, the file size and
modification time, and the decode-time frame size, so an edited file or another ``data.frame_size``
never reads a stale entry. Entries are written to a temporary file and renamed, so concurrent workers
and interrupted runs never leave a partial array under the final name. Cached arrays are opened
memory-mapped: a window reads only its own frames (and only its crop's rows).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from lift.atomic import atomic_path

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# Bump when the decoded content for the same key would change (e.g. another resize filter).
# 2: a video's entry holds its usable_frames (the declared count less the allowance).
CACHE_VERSION = 2
_GRAY_IMAGE_MODES = ("L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "1")


class BadVideoError(ValueError):
    """One input file (video or frame image) cannot be used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from (path, reason), not from the message: a DataLoader worker pickles it over.
        return (type(self), (self.path, self.reason))


@dataclass
class DecodeStats:
    """Process-local counters, so tests and the benchmark can tell decoding from cache hits."""

    videos_decoded: int = 0
    frames_decoded: int = 0
    images_read: int = 0
    cache_hits: int = 0
    cache_writes: int = 0

    def reset(self) -> None:
        self.videos_decoded = self.frames_decoded = self.images_read = self.cache_hits = self.cache_writes = 0


STATS = DecodeStats()


@dataclass(frozen=True)
class VideoInfo:
    path: str
    declared_frames: int  # 0 when the container does not say (mkv, webm, raw streams)
    width: int
    height: int
    codec: str


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise BadVideoError(path, "does not exist or is not a file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise BadVideoError(path, f"cannot be opened as a video ({err})") from err


def _video_stream(path: Path, container: Any) -> Any:
    """The first video stream of an open container (BadVideoError when there is none)."""
    if not container.streams.video:
        raise BadVideoError(path, "contains no video stream")
    return container.streams.video[0]


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open the container and read its video stream header; nothing is decoded."""
    path = Path(path)
    container = _open(path)
    with container:
        stream = _video_stream(path, container)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise BadVideoError(path, f"video stream reports no frame size ({width}x{height})")
        return VideoInfo(str(path), int(stream.frames or 0), width, height, stream.codec_context.name)


def _resize_kwargs(native_hw: tuple[int, int], frame_size: tuple[int, int] | None) -> dict:
    if frame_size is None or tuple(frame_size) == tuple(native_hw):
        return {}
    h, w = frame_size
    downscale = h * w < native_hw[0] * native_hw[1]
    # AREA averages when shrinking (no aliasing); BILINEAR when enlarging.
    return {"width": w, "height": h, "interpolation": "AREA" if downscale else "BILINEAR"}


def _check_frame(path: Path, frame: av.VideoFrame, index: int, first_hw: tuple[int, int]) -> None:
    """BadVideoError when a decoded frame changes size or is flagged corrupt."""
    hw = (frame.height, frame.width)
    if hw != first_hw:
        raise BadVideoError(
            path, f"frame {index} is {hw[1]}x{hw[0]} but frame 0 is {first_hw[1]}x{first_hw[0]} "
                  "(the frame size changes inside the video)")
    if frame.is_corrupt:
        raise BadVideoError(path, f"frame {index} is flagged corrupt by the decoder (damaged data)")


def _decode_frames(path: Path, container: Any, stream: Any, frame_size: tuple[int, int] | None,
                   max_frames: int | None) -> list[np.ndarray]:
    """RGB frames of `stream` (resized to `frame_size`), checked frame by frame."""
    frames: list[np.ndarray] = []
    first_hw: tuple[int, int] | None = None
    kwargs: dict = {}
    warned_gray = False
    # A private scaler, freed (its slice threads joined) when this call returns: frame.to_ndarray
    # would use PyAV's per-thread cached one, whose slice-thread pool outlives the call; a DataLoader
    # worker forked afterwards inherits that pool without its threads and hangs for ever in
    # avpriv_slicethread_free when it rescales. So decoding leaves no FFmpeg thread behind (the
    # codec's own threads end with the container).
    scaler = VideoReformatter()
    try:
        for frame in container.decode(stream):
            if first_hw is None:
                first_hw = (frame.height, frame.width)
                kwargs = _resize_kwargs(first_hw, frame_size)
            _check_frame(path, frame, len(frames), first_hw)
            fmt = frame.format.name
            if not warned_gray and (fmt.startswith("gray") or fmt.startswith("ya")):
                log.warning("%s: grayscale video (pixel format %s); converted to RGB by replicating the channel",
                            path, fmt)
                warned_gray = True
            frames.append(scaler.reformat(frame, format="rgb24", **kwargs).to_ndarray())
            if max_frames is not None and len(frames) >= max_frames:
                break
    except BadVideoError:
        raise
    except (av.FFmpegError, OSError) as err:
        raise BadVideoError(path, f"decode error after {len(frames)} frames ({err})") from err
    return frames


def frame_allowance(declared: int) -> int:
    """How many frames a decode may fall short of the container's declared count and still be
    accepted: max(2, 1%). Real MP4s often declare a frame or two more than they decode (a dropped
    final frame, edit lists); a truncated file falls far shorter (a real one: 68 of 444)."""
    return max(2, declared // 100)


def usable_frames(declared: int) -> int:
    """The frames a dataset takes from a video whose container declares `declared` (> 0) frames.

    The declared count less the allowance: a pure function of the header, so a sequence's length,
    and with it every sample id, is the same whether it comes from the header (nothing decoded yet)
    or from the frame cache, also for a file that decodes a frame or two short.
    """
    return max(1, declared - frame_allowance(declared))


def _check_count(path: Path, frames: list[np.ndarray], declared: int) -> list[np.ndarray]:
    """The frames, checked against the count the container declares (truncated files are refused)."""
    if declared <= 0:
        return frames
    allowance = frame_allowance(declared)
    if len(frames) < declared - allowance:
        raise BadVideoError(
            path, f"the container declares {declared} frames but only {len(frames)} could be decoded "
                  f"(truncated or damaged file; up to {allowance} missing frames are accepted)")
    if len(frames) < declared:
        log.info("%s: decoded %d frames, the container declares %d (within the allowance of %d)",
                 path, len(frames), declared, allowance)
    if len(frames) > declared:
        # Keep the declared count so the sequence length never depends on whether it came from
        # the header (first run) or the cache (later runs): sample ids must be stable.
        log.warning("%s: decoded %d frames, the container declares %d; using the first %d",
                    path, len(frames), declared, declared)
        frames = frames[:declared]
    return frames


def decode_video(
    path: str | os.PathLike,
    frame_size: tuple[int, int] | None = None,
    *,
    max_frames: int | None = None,
    usable_only: bool = False,
) -> np.ndarray:
    """All frames of a video in decoder output order, ``uint8 [T, H, W, 3]`` RGB.

    ``frame_size`` (height, width) resizes every frame. ``max_frames`` stops early (then the count is
    not checked against the container). A decode short of the declared count by at most
    :func:`frame_allowance` frames is accepted; more frames than declared are cut to the declared
    count. ``usable_only`` cuts to :func:`usable_frames` (what datasets use) when the container
    declares a count. Raises BadVideoError for any problem (see module docstring).
    """
    path = Path(path)
    container = _open(path)
    with container:
        stream = _video_stream(path, container)
        # Frame threading changes nothing about output order and speeds up large frames.
        stream.thread_type = "AUTO"
        # "careful" makes the decoders flag (is_corrupt) damage they would otherwise conceal silently.
        stream.codec_context.options = {"err_detect": "careful"}
        declared = int(stream.frames or 0)
        frames = _decode_frames(path, container, stream, frame_size, max_frames)
    if not frames:
        raise BadVideoError(path, "no frame could be decoded")
    if max_frames is None:
        frames = _check_count(path, frames, declared)
        if usable_only and declared > 0:
            frames = frames[:usable_frames(declared)]
    STATS.videos_decoded += 1
    STATS.frames_decoded += len(frames)
    return np.stack(frames)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) from the image header, without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise BadVideoError(path, f"cannot be read as an image ({err})") from err


def read_image(
    path: str | os.PathLike,
    frame_size: tuple[int, int] | None = None,
    expected_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """One frame image as ``uint8 [H, W, 3]`` RGB, optionally resized to ``frame_size`` (height, width).

    ``expected_hw`` is the native size of the sequence's first frame; another size is an error.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            native = (img.height, img.width)
            if expected_hw is not None and native != tuple(expected_hw):
                raise BadVideoError(
                    path, f"frame is {native[1]}x{native[0]} but the sequence's first frame is "
                          f"{expected_hw[1]}x{expected_hw[0]} (the frame size changes inside the sequence)")
            if img.mode in _GRAY_IMAGE_MODES:
                log.warning("%s: grayscale image (mode %s); converted to RGB by replicating the channel",
                            path, img.mode)
                if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    # 16-bit/float grayscale: scale to 8 bits instead of clipping.
                    arr = np.asarray(img, dtype=np.float64)
                    top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
                    img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
            if img.mode != "RGB":
                img = img.convert("RGB")
            if frame_size is not None and native != tuple(frame_size):
                img = img.resize((frame_size[1], frame_size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except BadVideoError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise BadVideoError(path, f"cannot be read as an image ({err})") from err
    STATS.images_read += 1
    return arr


# ---------------------------------------------------------------------------------------------
# Cache of decoded frames
# ---------------------------------------------------------------------------------------------

def _stat_token(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def cache_key(files: list[Path], frame_size: tuple[int, int] | None) -> str:
    """Hex key of the decoded content of `files` (one video, or the images of one sequence)."""
    h = hashlib.sha1(f"v{CACHE_VERSION}|{tuple(frame_size) if frame_size else 'native'}".encode())
    for f in files:
        h.update(b"\n" + _stat_token(f).encode())
    return h.hexdigest()


def cache_path(cache_dir: str | os.PathLike, stem: str, key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[-60:] or "frames"
    return Path(cache_dir).expanduser() / f"{safe}-{key[:20]}.npy"


def _check_entry(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8:
        log.warning("frame cache entry %s has shape %s dtype %s; it will be rebuilt", path, shape, dtype)
        path.unlink(missing_ok=True)
        return False
    return True


def cached_shape(path: Path) -> tuple[int, int, int, int] | None:
    """Shape of a cache entry from its header (nothing mapped or read), or None when absent/damaged."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                arr = np.load(path, mmap_mode="r")
                shape, dtype = arr.shape, arr.dtype
                del arr
    except (OSError, ValueError) as err:
        log.warning("frame cache entry %s is unreadable (%s); it will be rebuilt", path, err)
        path.unlink(missing_ok=True)
        return None
    if not _check_entry(path, shape, np.dtype(dtype)):
        return None
    return shape  # type: ignore[return-value]


class LRU(Generic[K, V]):
    """At most `capacity` entries; a lookup or a store makes an entry the most recent, and a store
    beyond the capacity drops the least recent one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def forget(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _MapLRU(LRU[Path, np.ndarray]):
    """Open memory maps of cache entries, bounded: each map holds a file descriptor, and a dataset
    of thousands of videos must not hold thousands of them per worker."""

    def get(self, path: Path) -> np.ndarray | None:
        arr = super().get(path)
        if arr is not None or not path.is_file():
            return arr
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            log.warning("frame cache entry %s is unreadable (%s); it will be rebuilt", path, err)
            path.unlink(missing_ok=True)
            return None
        if not _check_entry(path, arr.shape, arr.dtype):
            return None
        STATS.cache_hits += 1
        self.put(path, arr)
        return arr


MAPS = _MapLRU(capacity=64)


def open_cached(path: Path) -> np.ndarray | None:
    """The cached array memory-mapped read-only, or None when absent. A damaged entry is removed."""
    return MAPS.get(path)


def store_cached(path: Path, frames: np.ndarray) -> None:
    """Write `frames` to `path` atomically (temporary file in the same folder, then rename)."""
    # A cache: a damaged entry is detected and decoded again, so no fsync is paid per entry.
    with atomic_path(path, durable=False) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(frames, dtype=np.uint8))
    MAPS.forget(path)
    STATS.cache_writes += 1


# A few decoded arrays per process, for sources whose disk cache is off.
MEMORY_LRU: LRU[str, np.ndarray] = LRU(capacity=2)
