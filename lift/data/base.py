"""BaseVideoDataset: frame sequences -> window samples (shared/design/ARCHITECTURE.md).

A subclass only lists its sequences (:meth:`BaseVideoDataset.discover`); this class turns them into
samples:

* **training** (``train=True``): one item per window position of every sequence (or
  ``data.train_samples_per_epoch`` random positions). Each item draws, from an RNG seeded by
  ``(seed, epoch, index)``, the anchor distance ``a`` in ``1..gap-1`` (always 1 when ``gap == 2``),
  a random ``data.crop_size`` crop and the augmentations, all applied identically to every frame of
  the window: horizontal/vertical flips, 90-degree rotations (180 only, for non-square crops), colour
  jitter, channel-order reversal (``data.channel_reverse``, RIFE's) and temporal reversal.
  :meth:`set_epoch` selects the epoch's draws; it must reach the dataset copy that loads
  (persistent DataLoader workers keep their own copy: lift.data.loading.EpochDataset passes the
  epoch with every index for that reason).
* **evaluation** (``train=False``): deterministic, no augmentation, ``a = gap // 2``, whole frames
  unless ``data.eval_crop`` (a centre crop). The targets of a sequence are
  ``data.eval_targets_per_video`` indices evenly spaced over the targets valid for the *largest*
  window/offset of the study (``data.eval_max_window`` / ``data.eval_max_offset``, else the window
  itself), so every arm of a study sees identical sample ids.

Temporal reversal plays the window backwards: time ``t -> 1 - t``, the timestep ``a/gap`` becomes
``1 - a/gap``, and the input order contract still holds (``frames[0]`` is the left anchor at time 0,
which after reversal is the later source frame).

Bad inputs: with ``data.on_bad_video = "error"`` the first bad sequence raises (BadVideoError or
WindowError naming the file and the reason), and problems only visible when decoding (truncation,
corrupt frames) raise when the sequence is first loaded. With ``"skip"`` every sequence is fully
decoded once at construction (filling the frame cache), bad ones are logged and listed in
``dataset.skipped`` as ``(path, reason)``. If no sequence fits the window, it is always an error.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from lift.config import DataConfig
from lift.data.decode import BadVideoError
from lift.data.sources import Box, Sequence
from lift.data.window import sample_id
from lift.window import WindowError, WindowSpec

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all")


class DatasetError(ValueError):
    """A dataset as a whole is unusable (no sequences, an empty split); the message says why."""


def require_dir(path: str | Path | None, what: str, expected: str) -> Path:
    """`path` as an existing directory, or FileNotFoundError naming it and the expected layout."""
    if path is None:
        raise FileNotFoundError(f"{what}: data.data_root is not set; expected {expected}")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{what}: {p} does not exist or is not a directory; expected {expected}")
    return p


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} does not exist")
    return path


def evenly_spaced(values: SequenceABC[int], count: int) -> list[int]:
    """`count` entries spread evenly over `values` (bin centres), or all of them if fewer."""
    n = len(values)
    if n <= count:
        return list(values)
    return [values[int((i + 0.5) * n / count)] for i in range(count)]


@dataclass(frozen=True)
class _Draws:
    """The random choices of one training item."""

    position: int  # flat window position (used with data.train_samples_per_epoch)
    a: int  # anchor distance 1..gap-1
    reverse: bool
    crop_y: float  # in [0, 1)
    crop_x: float
    hflip: bool
    vflip: bool
    rot: int  # quarter turns 0..3
    jitter: np.ndarray  # three values in [-1, 1]: brightness, contrast, saturation
    channel_reverse: bool


class BaseVideoDataset(Dataset):
    """Window samples from a list of frame sequences; subclasses implement :meth:`discover`."""

    #: registry name, also the first component of sample ids
    name: ClassVar[str] = "base"
    #: every sequence of the dataset has exactly this many frames (Vimeo septuplets: 7)
    fixed_length: ClassVar[int | None] = None
    supported_splits: ClassVar[tuple[str, ...]] = SPLITS

    def __init__(self, data_cfg: DataConfig, split: str = "train", *, train: bool | None = None,
                 seed: int = 0) -> None:
        self._setup(data_cfg, split, train=train, seed=seed)
        self._check_fixed_length()
        candidates = self.discover()
        self.sequences: list[Sequence] = self._select(candidates)
        self._build_index()

    @classmethod
    def list_sequences(cls, data_cfg: DataConfig, split: str = "all") -> tuple[list[Sequence], list[tuple[str, str]]]:
        """Every sequence of `split` without window checks or decoding, and the inputs found bad while
        listing (recorded per ``data.on_bad_video``). Used by ``python -m lift.data prepare``."""
        self = cls.__new__(cls)
        self._setup(data_cfg, split, train=False, seed=0)
        return self.discover(), self.skipped

    def _setup(self, data_cfg: DataConfig, split: str, *, train: bool | None, seed: int) -> None:
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        if split not in self.supported_splits:
            raise ValueError(f"{self.name}: split {split!r} is not available; "
                             f"this dataset has {', '.join(self.supported_splits)}")
        self.cfg = data_cfg
        self.split = split
        self.train = (split == "train") if train is None else bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self.spec = WindowSpec(data_cfg.window, data_cfg.temporal_offset, data_cfg.gap)
        self.eval_spec = WindowSpec(data_cfg.eval_max_window or data_cfg.window,
                                    data_cfg.eval_max_offset or data_cfg.temporal_offset, data_cfg.gap)
        self.frame_size: tuple[int, int] | None = tuple(data_cfg.frame_size) if data_cfg.frame_size else None
        self.cache_dir: str | None = (str(Path(data_cfg.cache_dir).expanduser())
                                      if data_cfg.cache_frames else None)
        self.skipped: list[tuple[str, str]] = []

    # -- subclass interface ---------------------------------------------------------------------

    @abstractmethod
    def discover(self) -> list[Sequence]:
        """The split's sequences, in a deterministic order. Call `self.bad(...)` for per-item problems."""

    def extras(self, seq: Sequence, target: int, inputs: list[int]) -> dict[str, tuple[np.ndarray, str]] | None:
        """Extra per-input maps (name -> (array [N, C, H, W] at full frame, kind "flow" | "mask"))."""
        return None

    # -- construction ---------------------------------------------------------------------------

    @property
    def required_spec(self) -> WindowSpec:
        """The window every kept sequence must fit: the training window, or the study's largest."""
        return self.spec if self.train else self.eval_spec

    def bad(self, path: str | Path, reason: str, error: Exception | None = None) -> None:
        """A bad input: raise (on_bad_video=error) or log and record it (on_bad_video=skip)."""
        if self.cfg.on_bad_video == "error":
            raise error if error is not None else BadVideoError(path, reason)
        log.warning("%s/%s: skipping %s: %s", self.name, self.split, path, reason)
        self.skipped.append((str(path), reason))

    def _check_fixed_length(self) -> None:
        if self.fixed_length is not None:
            self.required_spec.check_fits(
                self.fixed_length, f"{self.name}: every sequence has exactly {self.fixed_length} frames, so")

    def _select(self, candidates: list[Sequence]) -> list[Sequence]:
        spec = self.required_spec
        limit = self.cfg.max_sequences
        validate = self.cfg.on_bad_video == "skip"
        kept: list[Sequence] = []
        short: list[int] = []
        bar = tqdm(candidates, desc=f"checking {self.name}/{self.split}", unit="seq", leave=False,
                   disable=not (validate and len(candidates) > 50))
        for seq in bar:
            if limit is not None and len(kept) >= limit:
                break
            try:
                if validate:
                    seq.source.validate()
                length = seq.source.length
            except BadVideoError as err:
                self.bad(err.path, err.reason, err)
                continue
            if length < spec.span:
                short.append(length)
                try:
                    spec.check_fits(length, f"{self.name} video {seq.video_id} ({seq.source.path})")
                except WindowError as err:
                    self.bad(seq.source.path, str(err), err)
                continue
            kept.append(seq)
        bar.close()
        if not kept:
            if short:
                raise WindowError(
                    f"{self.name}/{self.split}: no sequence fits window={spec.window} with "
                    f"temporal_offset={spec.temporal_offset} and gap={spec.gap}: it needs {spec.span} "
                    f"consecutive frames, the longest of {len(short)} sequences has {max(short)}")
            if candidates:
                first = self.skipped[0] if self.skipped else ("?", "?")
                raise DatasetError(f"{self.name}/{self.split}: all {len(candidates)} sequences were unusable "
                                   f"(first: {first[0]}: {first[1]})")
            raise DatasetError(f"{self.name}/{self.split}: no sequences found (data_root={self.cfg.data_root})")
        # Fail early, naming sizes, rather than at the first sample.
        self._check_crop(kept[0])
        return kept

    def eval_targets(self, length: int) -> list[int]:
        """Fixed evaluation targets of a sequence: evenly spaced, valid for the study's largest window."""
        valid = self.eval_spec.valid_targets(length, self.eval_spec.default_a())
        return evenly_spaced(valid, self.cfg.eval_targets_per_video)

    def _build_index(self) -> None:
        if self.train:
            span = self.spec.span
            counts = [seq.source.length - span + 1 for seq in self.sequences]
            self._cum = np.cumsum(counts)
            self._positions = int(self._cum[-1])
            self._len = self.cfg.train_samples_per_epoch or self._positions
            self._items: list[tuple[int, int]] = []
        else:
            self._items = [(i, t) for i, seq in enumerate(self.sequences)
                           for t in self.eval_targets(seq.source.length)]
            self._len = len(self._items)

    # -- samples --------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of this epoch (training); evaluation ignores it."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._len

    @property
    def sample_ids(self) -> list[str]:
        """Evaluation sample ids in item order (training items are random, so this is eval-only)."""
        if self.train:
            raise ValueError(f"{self.name}/{self.split}: training items are random; sample_ids is for evaluation")
        return [sample_id(self.name, self.sequences[i].video_id, self.sequences[i].first_frame + t)
                for i, t in self._items]

    def _locate(self, flat: int) -> tuple[int, int]:
        seq_i = int(np.searchsorted(self._cum, flat, side="right"))
        start = flat - (int(self._cum[seq_i - 1]) if seq_i else 0)
        return seq_i, start

    def _check_crop(self, seq: Sequence) -> None:
        crop = self.cfg.crop_size if self.train else self.cfg.eval_crop
        if crop is None:
            return
        h, w = seq.source.frame_hw
        if crop[0] > h or crop[1] > w:
            key = "data.crop_size" if self.train else "data.eval_crop"
            raise ValueError(f"{key} {crop[0]}x{crop[1]} (HxW) is larger than the {h}x{w} frames of "
                             f"{self.name} video {seq.video_id} ({seq.source.path}); lower it or set data.frame_size")

    def _box(self, seq: Sequence, draws: _Draws | None) -> Box | None:
        crop = self.cfg.crop_size if self.train else self.cfg.eval_crop
        if crop is None:
            return None
        self._check_crop(seq)
        h, w = seq.source.frame_hw
        ch, cw = crop
        if draws is None:
            return (h - ch) // 2, (w - cw) // 2, ch, cw
        return int(draws.crop_y * (h - ch + 1)), int(draws.crop_x * (w - cw + 1)), ch, cw

    def _draw(self, index: int) -> _Draws:
        # Every value is drawn, in a fixed order, whatever the config: switching one augmentation
        # off leaves the others' draws unchanged (and comparable in tests).
        rng = np.random.default_rng([self.seed, self.epoch, index])
        u = rng.random(8)
        return _Draws(position=int(rng.integers(self._positions)), a=1 + int(rng.integers(max(self.spec.gap - 1, 1))),
                      reverse=bool(u[0] < 0.5), crop_y=float(u[1]), crop_x=float(u[2]), hflip=bool(u[3] < 0.5),
                      vflip=bool(u[4] < 0.5), rot=int(u[5] * 4) % 4, jitter=rng.uniform(-1.0, 1.0, size=3),
                      channel_reverse=bool(u[6] < 0.5))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self._len:
            raise IndexError(f"{self.name}/{self.split}: index {index} outside 0..{self._len - 1}")
        gap = self.spec.gap
        draws: _Draws | None = None
        reverse = False
        if self.train:
            draws = self._draw(index)
            flat = draws.position if self.cfg.train_samples_per_epoch else index
            seq_i, start = self._locate(flat)
            a = draws.a  # 1..gap-1: arbitrary timesteps when gap > 2
            target = start + self.spec.reach + a
            reverse = self.cfg.augment and self.cfg.temporal_reverse and draws.reverse
        else:
            seq_i, target = self._items[index]
            a = self.spec.default_a()
        seq = self.sequences[seq_i]
        # Reversed time: the window of anchor distance gap-a read backwards (see module docstring).
        a_eff = gap - a if reverse else a
        sign = -1 if reverse else 1
        inputs = [target + sign * off for off in self.spec.input_offsets(a_eff)]
        box = self._box(seq, draws)
        frames = seq.source.load(inputs + [target], box)
        extras = self.extras(seq, target, inputs) or {}
        if box is not None:
            top, left, h, w = box
            extras = {k: (v[..., top:top + h, left:left + w], kind) for k, (v, kind) in extras.items()}
        augment = draws is not None and self.cfg.augment
        if augment:
            for op, k in self._spatial_ops(draws, square=frames.shape[1] == frames.shape[2]):
                frames = spatial_op(frames, op, k, channels_last=True)
                extras = {name: (spatial_op(arr, op, k, channels_last=False, vectors=(kind == "flow")), kind)
                          for name, (arr, kind) in extras.items()}
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        x = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
        if augment and self.cfg.color_jitter > 0:
            x = color_jitter(x, 1.0 + self.cfg.color_jitter * draws.jitter)
        if augment and self.cfg.channel_reverse and draws.channel_reverse:
            x = x.flip(1)  # RGB -> BGR for every frame of the window alike (RIFE)
        n = self.spec.num_inputs
        target_index = seq.first_frame + target
        sample: dict[str, Any] = {
            "frames": x[:n],
            "times": torch.tensor(self.spec.input_times(a_eff), dtype=torch.float32),
            "target": x[n],
            "timestep": torch.tensor(self.spec.timestep(a_eff), dtype=torch.float32),
            "sample_id": sample_id(self.name, seq.video_id, target_index),
            "video_id": seq.video_id,
            "cluster_id": seq.cluster_id,
            "target_index": int(target_index),
        }
        for key, (arr, _) in extras.items():
            sample[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        return sample

    def _spatial_ops(self, draws: _Draws, square: bool) -> list[tuple[str, int]]:
        ops: list[tuple[str, int]] = []
        if self.cfg.flip and draws.hflip:
            ops.append(("hflip", 0))
        if self.cfg.flip and draws.vflip:
            ops.append(("vflip", 0))
        if self.cfg.rotate:
            # A quarter turn of a non-square crop would change its shape and break batching: 180 only.
            k = draws.rot if square else 2 * (draws.rot // 2)
            if k:
                ops.append(("rot", k))
        return ops

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, train={self.train}, "
                f"sequences={len(self.sequences)}, samples={len(self)}, window={self.spec.window}, "
                f"temporal_offset={self.spec.temporal_offset}, gap={self.spec.gap}, skipped={len(self.skipped)})")


def spatial_op(arr: np.ndarray, op: str, k: int = 0, *, channels_last: bool, vectors: bool = False) -> np.ndarray:
    """Flip or rotate images/maps; with `vectors`, also transform (u, v) flow vectors in channel 0/1.

    Layouts: ``[n, H, W, C]`` (channels_last) or ``[n, C, H, W]``. Rotation is ``np.rot90`` (counter-
    clockwise as displayed, y pointing down): a displacement (u, v) becomes (v, -u) per quarter turn.
    """
    hx, wx = (1, 2) if channels_last else (2, 3)
    if op == "hflip":
        out = np.flip(arr, axis=wx)
    elif op == "vflip":
        out = np.flip(arr, axis=hx)
    elif op == "rot":
        out = np.rot90(arr, k, axes=(hx, wx))
    else:
        raise ValueError(f"unknown spatial op {op!r}")
    if not vectors:
        return out
    if channels_last:
        raise ValueError("flow vectors are expected as [n, 2, H, W]")
    out = np.array(out, dtype=np.float32)
    u, v = out[:, 0].copy(), out[:, 1].copy()
    if op == "hflip":
        out[:, 0] = -u
    elif op == "vflip":
        out[:, 1] = -v
    else:
        for _ in range(k % 4):
            u, v = v, -u
        out[:, 0], out[:, 1] = u, v
    return out


_LUMA = (0.299, 0.587, 0.114)


def color_jitter(x: torch.Tensor, factors: SequenceABC[float]) -> torch.Tensor:
    """Brightness, contrast and saturation `factors` (1 = unchanged) applied to every frame alike.

    ``x`` is ``[n, 3, H, W]`` in [0, 1]. Brightness scales, contrast stretches around the window's
    mean (one mean for all frames, so every frame gets the same map), saturation blends with the
    luma. The three compose to one affine colour map ``x -> c*b*S x + (1-c)*mean``, applied as a
    single 3x3 matrix product (``S`` keeps grey grey, so the offset is the same for each channel),
    then clamped to [0, 1].
    """
    b, c, s = (float(f) for f in factors)
    n, ch, h, w = x.shape
    luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
    sat = s * torch.eye(3, dtype=x.dtype, device=x.device) + (1.0 - s) * luma.expand(3, 3)
    offset = (1.0 - c) * b * x.mean()
    out = torch.matmul((c * b) * sat, x.reshape(n, ch, h * w)).add_(offset)
    return out.reshape(n, ch, h, w).clamp_(0.0, 1.0)
