"""Known-answer sequences for the far-context question: is the information in the references used?

Every sequence is one independent generated *source*: a textured background panning at a constant
integer velocity of 2.5-4.3 px per frame (so far frames line up with the target only through a
correct flow), and an opaque occluder, fixed on screen, that is present **only at the two anchor
frames**. The part of the target behind the occluder (``hidden`` = pixels that neither anchor
shows) is therefore visible in the references and in no anchor:

* ``data.known_answer_variant = informative``: the references are frames of the same source, so a
  network that aligns them (flow ``velocity * offset``) recovers the hidden region exactly.
* ``uninformative``: the references come from an unrelated source (another texture and motion);
  nothing in them helps, and window 15 should do no better than window 3.

A source has ``eval_max_window``'s span of frames with the target in the middle; training and
evaluation both use exactly that target (``data.gap`` must be 2), so every window sees the same
targets and the same number of samples. Samples carry, besides the usual keys, ``flow_gt``
``[N, 2, H, W]`` (exact backward flow target -> input; zero for unrelated references), ``valid``
``[N, 1, H, W]`` (1 where the input shows the target pixel), ``hidden`` ``[1, 1, H, W]`` and
``cluster_id`` (the source: splits are made by source, so held-out sources are new textures and
motions). Content is a pure function of (variant, split, index). Frame size: ``data.frame_size``,
else ``data.crop_size``; ``data.max_sequences`` sources per split (default 256 / 32 / 32).
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Any

import numpy as np

from lift.config import DataConfig
from lift.data.base import BaseVideoDataset
from lift.data.registry import register_dataset
from lift.data.sources import Box, GeneratedSource, Sequence
from lift.data.synthetic import _texture

DEFAULT_COUNTS = {"train": 256, "val": 32, "test": 32}
SPLIT_SEEDS = {"train": 5_000_011, "val": 6_000_011, "test": 7_000_003}
# Seeds of the unrelated sources that provide the uninformative references.
UNRELATED_OFFSET = 900_001
MIN_SPEED, MAX_SPEED = 2.5, 4.3  # background motion, pixels per frame
# Occluder side as a fraction of the frame side.
OCCLUDER_FRACTION = (0.35, 0.5)
VARIANTS = ("informative", "uninformative")


def _velocity(rng: np.random.Generator) -> tuple[int, int]:
    """An integer (vx, vy) with speed in [MIN_SPEED, MAX_SPEED]: exact whole-pixel motion."""
    choices = [(x, y) for x in range(-4, 5) for y in range(-4, 5) if MIN_SPEED <= np.hypot(x, y) <= MAX_SPEED]
    return choices[int(rng.integers(len(choices)))]


class PanningSource:
    """A texture panning at a constant integer velocity; frame ``t`` relative to the centre ``c``
    shows the canvas shifted by ``velocity * (t - c)``."""

    def __init__(self, seed: int, length: int, hw: tuple[int, int]) -> None:
        rng = np.random.default_rng(seed)
        self.velocity = _velocity(rng)
        self.length, self.hw, self.centre = length, hw, length // 2
        reach = length // 2 + 1
        self.margin = (abs(self.velocity[1]) * reach, abs(self.velocity[0]) * reach)  # (y, x)
        h, w = hw
        self.canvas = _texture(rng, h + 2 * self.margin[0], w + 2 * self.margin[1])
        self.rng_state = rng  # the occluder is drawn from the same stream, after the texture

    def frame(self, t: int) -> np.ndarray:
        vx, vy = self.velocity
        o = t - self.centre
        # Content moves by +velocity per frame: the target pixel p is at p + velocity * o in frame t.
        y0, x0 = self.margin[0] - vy * o, self.margin[1] - vx * o
        h, w = self.hw
        return self.canvas[y0:y0 + h, x0:x0 + w]


class KnownAnswerSource(GeneratedSource):
    """One known-answer source (see the module doc): frames, exact flows and the hidden region."""

    _LAZY = {"_built": lambda: None}

    def __init__(self, seed: int, length: int, hw: tuple[int, int], informative: bool) -> None:
        super().__init__(length, hw)
        self.seed, self.informative = int(seed), informative
        self.path = f"known_answer:{'informative' if informative else 'uninformative'}:seed={self.seed}"
        self._built: tuple[PanningSource, PanningSource | None, tuple[int, int, int, int], np.ndarray] | None

    @property
    def centre(self) -> int:
        return self._length // 2

    def _build(self) -> tuple[PanningSource, PanningSource | None, tuple[int, int, int, int], np.ndarray]:
        if self._built is None:
            main = PanningSource(self.seed, self._length, self._hw)
            rng = main.rng_state
            h, w = self._hw
            oh = int(round(h * rng.uniform(*OCCLUDER_FRACTION)))
            ow = int(round(w * rng.uniform(*OCCLUDER_FRACTION)))
            box = (int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1)), oh, ow)
            colour = rng.integers(0, 256, size=3).astype(np.uint8)
            other = None if self.informative else PanningSource(self.seed + UNRELATED_OFFSET, self._length, self._hw)
            self._built = (main, other, box, colour)
        return self._built

    def _is_anchor(self, t: int) -> bool:
        return abs(t - self.centre) == 1

    def _is_reference(self, t: int) -> bool:
        return abs(t - self.centre) > 1

    def render(self, t: int) -> np.ndarray:
        main, other, (top, left, oh, ow), colour = self._build()
        if other is not None and self._is_reference(t):
            return other.frame(t)
        img = np.array(main.frame(t))
        if self._is_anchor(t):
            img[top:top + oh, left:left + ow] = colour
        return img

    def load(self, indices: SequenceABC[int], box: Box | None = None) -> np.ndarray:
        self._check_indices(indices, self._length)
        frames = np.stack([self.render(int(i)) for i in indices])
        if box is not None:
            top, left, bh, bw = box
            frames = frames[:, top:top + bh, left:left + bw]
        return frames

    def maps(self, target: int, inputs: SequenceABC[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact flow ``[N, 2, H, W]``, visibility ``[N, 1, H, W]`` and hidden region ``[1, 1, H, W]``."""
        main, other, (top, left, oh, ow), _ = self._build()
        h, w = self._hw
        vx, vy = main.velocity
        yy, xx = np.mgrid[0:h, 0:w]
        flows = np.zeros((len(inputs), 2, h, w), dtype=np.float32)
        valid = np.zeros((len(inputs), 1, h, w), dtype=np.float32)
        seen_by_anchor = np.zeros((h, w), dtype=bool)
        for n, t in enumerate(inputs):
            if other is not None and self._is_reference(t):
                continue  # an unrelated frame: no correspondence
            o = int(t) - target
            flows[n, 0], flows[n, 1] = vx * o, vy * o
            ty, tx = yy + vy * o, xx + vx * o
            seen = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            if self._is_anchor(t):
                covered = (ty >= top) & (ty < top + oh) & (tx >= left) & (tx < left + ow)
                seen &= ~covered
                seen_by_anchor |= seen
            valid[n, 0] = seen
        hidden = np.zeros((1, 1, h, w), dtype=np.float32)
        hidden[0, 0] = ~seen_by_anchor
        return flows, valid, hidden


@register_dataset
class KnownAnswerDataset(BaseVideoDataset):
    name = "known_answer"

    def _setup(self, data_cfg: DataConfig, split: str, *, train: bool | None, seed: int) -> None:
        super()._setup(data_cfg, split, train=train, seed=seed)
        if data_cfg.gap != 2:
            raise ValueError(f"known_answer: data.gap={data_cfg.gap}; expected 2 (the occluder is at the anchors "
                             f"t-1 and t+1 of the source's centre frame t)")
        if data_cfg.known_answer_variant not in VARIANTS:
            raise ValueError(f"known_answer: data.known_answer_variant={data_cfg.known_answer_variant!r}; "
                             f"expected one of {', '.join(VARIANTS)}")

    def discover(self) -> list[Sequence]:
        hw = tuple(self.frame_size or (int(self.cfg.crop_size[0]), int(self.cfg.crop_size[1])))
        # The largest window of the study (or this one), so every arm sees the same sources.
        span = max(self.spec.span, self.eval_spec.span)
        informative = self.cfg.known_answer_variant == "informative"
        parts = ("train", "val", "test") if self.split == "all" else (self.split,)
        seqs = []
        for part in parts:
            count = self.cfg.max_sequences or DEFAULT_COUNTS[part]
            for i in range(count):
                video_id = f"{self.cfg.known_answer_variant}-{part}{i:04d}"
                src = KnownAnswerSource(SPLIT_SEEDS[part] + i, span, hw, informative)  # type: ignore[arg-type]
                seqs.append(Sequence(video_id, src, group=video_id))
        return seqs

    def _build_index(self) -> None:
        super()._build_index()
        if self.train:
            # One training position per source: its centre frame (the only target with the occluder at
            # its anchors), whatever the window.
            n = len(self.sequences)
            self._cum = np.arange(1, n + 1)
            self._positions = n
            self._len = self.cfg.train_samples_per_epoch or n

    def _locate(self, flat: int) -> tuple[int, int]:
        seq = self.sequences[flat]
        assert isinstance(seq.source, KnownAnswerSource)
        # __getitem__ puts the target at start + reach + a, with a = 1 (gap 2).
        return flat, seq.source.centre - self.spec.reach - 1

    def eval_targets(self, length: int) -> list[int]:
        return [length // 2]

    def extras(self, seq: Sequence, target: int, inputs: list[int]) -> dict[str, tuple[np.ndarray, str]]:
        assert isinstance(seq.source, KnownAnswerSource)
        flow, valid, hidden = seq.source.maps(target, inputs)
        return {"flow_gt": (flow, "flow"), "valid": (valid, "mask"), "hidden": (hidden, "mask")}

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        sample["cluster_id"] = sample["video_id"]  # one source = one cluster
        return sample
