"""Frame sources: a sequence's frames with a known length, loaded lazily (and cached).

A dataset is a list of :class:`Sequence` (video id + frame source). Sources hold only paths and a
little metadata, so they pickle cheaply into DataLoader workers; decoded arrays are opened per process.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lift.data.decode import (
    MEMORY_LRU,
    BadVideoError,
    cache_key,
    cache_path,
    cached_shape,
    decode_video,
    image_size,
    open_cached,
    probe_video,
    read_image,
    store_cached,
    usable_frames,
)

Box = tuple[int, int, int, int]  # top, left, height, width


class FrameSource(ABC):
    """Frames ``0..length-1`` of one sequence as ``uint8 [n, H, W, 3]`` RGB."""

    #: the file or folder that errors name
    path: str

    @property
    @abstractmethod
    def length(self) -> int:
        """Number of frames; may open the file (raises BadVideoError)."""

    @property
    @abstractmethod
    def frame_hw(self) -> tuple[int, int]:
        """(height, width) of the frames `load` returns (after any decode-time resize)."""

    @abstractmethod
    def load(self, indices: SequenceABC[int], box: Box | None = None) -> np.ndarray:
        """The frames at `indices` (any order, repeats allowed), cropped to `box` if given."""

    def validate(self) -> None:
        """Decode everything once (filling the cache where enabled); raise BadVideoError on any problem."""
        self.load(range(self.length))

    def cache_files(self) -> list[Path]:
        """Cache entries this source reads or writes (for `prepare` reports)."""
        return []

    def _check_indices(self, indices: SequenceABC[int], length: int) -> None:
        bad = [i for i in indices if not 0 <= i < length]
        if bad:
            raise IndexError(f"{self.path}: frame indices {bad} outside 0..{length - 1}")


class GeneratedSource(FrameSource):
    """A procedurally generated sequence of a fixed length and frame size, rendered on demand.

    What a subclass builds or memoises lazily is named in ``_LAZY`` (attribute -> factory of its
    empty value) and dropped when the source is pickled into a DataLoader worker: each process
    renders its own, and the pickle stays small."""

    _LAZY: ClassVar[dict[str, Callable[[], Any]]] = {}

    def __init__(self, length: int, hw: SequenceABC[int]) -> None:
        self._length = int(length)
        self._hw = (int(hw[0]), int(hw[1]))
        for name, empty in self._LAZY.items():
            setattr(self, name, empty())

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update({name: empty() for name, empty in self._LAZY.items()})
        return state

    @property
    def length(self) -> int:
        return self._length

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self._hw


def _crop(arr: np.ndarray, indices: SequenceABC[int], box: Box | None) -> np.ndarray:
    if box is None:
        return np.stack([arr[i] for i in indices])
    top, left, h, w = box
    # Per-frame slicing reads only the crop's rows from a memory-mapped cache entry.
    return np.stack([arr[i, top:top + h, left:left + w] for i in indices])


class VideoFileSource(FrameSource):
    """One video file, decoded whole and sequentially on first use, then served from the cache.

    The length comes from the cache entry's header when present, else from the container header
    (``usable_frames`` of the declared count: the last max(2, 1%) frames are left out, so that a file
    that decodes a frame or two short of its header has the same length, and the same sample ids,
    before and after it is cached), else - for containers that do not declare it (mkv, webm) - from
    a full decode, which also fills the cache. Cached arrays
    are memory-mapped through a bounded per-process LRU. With the disk cache off, a small per-process
    memory LRU holds the last decoded videos (random access across many videos then decodes a lot).
    """

    def __init__(self, path: str | os.PathLike, frame_size: tuple[int, int] | None,
                 cache_dir: str | None) -> None:
        self.path = str(path)
        self.frame_size = tuple(frame_size) if frame_size else None
        self.cache_dir = cache_dir
        self._length: int | None = None
        self._hw: tuple[int, int] | None = None
        self._key: str | None = None

    def _cache_entry(self) -> Path | None:
        if self.cache_dir is None:
            return None
        if self._key is None:
            p = Path(self.path)
            if not p.is_file():
                raise BadVideoError(p, "does not exist or is not a file")
            self._key = cache_key([p], self.frame_size)
        return cache_path(self.cache_dir, Path(self.path).stem, self._key)

    def cache_files(self) -> list[Path]:
        entry = self._cache_entry()
        return [entry] if entry is not None else []

    def _resolve(self) -> None:
        if self._length is not None:
            return
        entry = self._cache_entry()
        if entry is not None:
            shape = cached_shape(entry)
            if shape is not None:
                self._length, self._hw = int(shape[0]), (int(shape[1]), int(shape[2]))
                return
        info = probe_video(self.path)
        if info.declared_frames > 0:
            self._length = usable_frames(info.declared_frames)
            self._hw = self.frame_size or (info.height, info.width)
        else:
            arr = self._frames()
            self._length, self._hw = int(arr.shape[0]), (int(arr.shape[1]), int(arr.shape[2]))

    @property
    def length(self) -> int:
        self._resolve()
        assert self._length is not None
        return self._length

    @property
    def frame_hw(self) -> tuple[int, int]:
        self._resolve()
        assert self._hw is not None
        return self._hw

    def _frames(self) -> np.ndarray:
        entry = self._cache_entry()
        if entry is not None:
            arr = open_cached(entry)
            if arr is None:
                store_cached(entry, decode_video(self.path, self.frame_size, usable_only=True))
                arr = open_cached(entry)
                assert arr is not None
        else:
            lru_key = f"{self.path}|{self.frame_size}"
            arr = MEMORY_LRU.get(lru_key)
            if arr is None:
                arr = decode_video(self.path, self.frame_size, usable_only=True)
                MEMORY_LRU.put(lru_key, arr)
        if self._length is not None and arr.shape[0] != self._length:
            raise BadVideoError(self.path, f"decoded {arr.shape[0]} frames but {self._length} were expected "
                                           "(the file changed while in use)")
        return arr

    def load(self, indices: SequenceABC[int], box: Box | None = None) -> np.ndarray:
        arr = self._frames()
        self._check_indices(indices, arr.shape[0])
        return _crop(arr, indices, box)

    def validate(self) -> None:
        self._resolve()
        self._frames()


class ImageSequenceSource(FrameSource):
    """A sequence stored as one image file per frame (sorted order = frame order).

    Frames are read file by file at native size. When ``frame_size`` resizes them, or when a cache
    entry already exists (written by ``python -m lift.data prepare``), the whole sequence is decoded
    once into the frame cache and served memory-mapped from there.
    """

    def __init__(self, files: SequenceABC[str | os.PathLike], frame_size: tuple[int, int] | None,
                 cache_dir: str | None, name: str | None = None) -> None:
        if not files:
            raise ValueError("an image sequence needs at least one file")
        self.files = [str(f) for f in files]
        self.path = str(Path(self.files[0]).parent)
        self.name = name or Path(self.path).name
        self.frame_size = tuple(frame_size) if frame_size else None
        self.cache_dir = cache_dir
        self._native_hw: tuple[int, int] | None = None
        self._use_cache: bool | None = None
        self._key: str | None = None

    @property
    def length(self) -> int:
        return len(self.files)

    @property
    def native_hw(self) -> tuple[int, int]:
        if self._native_hw is None:
            self._native_hw = image_size(self.files[0])
        return self._native_hw

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self.frame_size or self.native_hw

    def _cache_entry(self) -> Path | None:
        if self.cache_dir is None:
            return None
        if self._key is None:
            paths = [Path(f) for f in self.files]
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise BadVideoError(missing[0], "frame image does not exist")
            self._key = cache_key(paths, self.frame_size)
        return cache_path(self.cache_dir, self.name, self._key)

    def cache_files(self) -> list[Path]:
        entry = self._cache_entry()
        return [entry] if entry is not None else []

    def _cached_frames(self, force: bool = False) -> np.ndarray | None:
        if self._use_cache is False and not force:
            return None
        entry = self._cache_entry()
        if entry is None:
            self._use_cache = False
            return None
        arr = open_cached(entry)
        if arr is None and (force or self.frame_size is not None):
            store_cached(entry, self._read_all())
            arr = open_cached(entry)
        self._use_cache = arr is not None
        if arr is not None and arr.shape[0] != len(self.files):
            raise BadVideoError(self.path, f"cache entry {entry} holds {arr.shape[0]} frames, expected {len(self.files)}")
        return arr

    def _read_all(self) -> np.ndarray:
        expected = self.native_hw
        return np.stack([read_image(f, self.frame_size, expected) for f in self.files])

    def materialize(self) -> None:
        """Write this sequence to the frame cache even at native size (used by `prepare`)."""
        self._cached_frames(force=True)

    def load(self, indices: SequenceABC[int], box: Box | None = None) -> np.ndarray:
        self._check_indices(indices, len(self.files))
        arr = self._cached_frames()
        if arr is not None:
            return _crop(arr, indices, box)
        expected = self.native_hw
        frames = [read_image(self.files[i], self.frame_size, expected) for i in indices]
        if box is not None:
            top, left, h, w = box
            frames = [f[top:top + h, left:left + w] for f in frames]
        return np.stack(frames)

    def validate(self) -> None:
        if self._cached_frames() is None:
            self._read_all()


class SegmentSource(FrameSource):
    """Frames ``start .. start+length-1`` of another source (a segment of a long video)."""

    def __init__(self, parent: FrameSource, start: int, length: int) -> None:
        self.parent = parent
        self.start = start
        self._length = length
        self.path = f"{parent.path} [frames {start}..{start + length - 1}]"

    @property
    def length(self) -> int:
        return self._length

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self.parent.frame_hw

    def load(self, indices: SequenceABC[int], box: Box | None = None) -> np.ndarray:
        self._check_indices(indices, self._length)
        return self.parent.load([self.start + i for i in indices], box)

    def validate(self) -> None:
        self.parent.validate()

    def cache_files(self) -> list[Path]:
        return self.parent.cache_files()


@dataclass
class Sequence:
    """One unit of a dataset: a video (or segment, or frame folder) and its frames."""

    video_id: str
    source: FrameSource
    # The unit splits are made of (UCF-101 group, Vimeo source folder, X4K scene); None: the video.
    group: str | None = None
    # Index of this sequence's frame 0 in its source video (segments), so that reported target
    # indices are frame numbers of the source video.
    first_frame: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    # The independent source this video comes from (the report's unit, STATISTICS.md); None: ``group``,
    # else the video itself. Only UCF-101 differs from ``group``: its split unit ``gXX`` spans every
    # class, while one source is one class's group ``v_<Class>_gXX``.
    cluster: str | None = None

    @property
    def cluster_id(self) -> str:
        return self.cluster or self.group or self.video_id
