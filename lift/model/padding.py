"""Padding frames to the network's size multiple and cropping its outputs back (RAFT's InputPadder).

    padder = InputPadder(frames.shape, model.size_multiple)
    pred, aux = model(*padder.pad(frames), times, timestep)
    pred, aux = padder.unpad(pred), padder.unpad_outputs(aux)

Frames are padded at the bottom and right, so the original pixels keep their coordinates and
cropping is a slice: by repeating the border (``mode="replicate"``, the default) or with zeros
(``"constant"``, the official RIFE inference's padding; ``model.pad_mode`` says which a model wants).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

# Entries of LIFT.forward's aux dict that are images (or lists of images) at the frames' size;
# the rest (loss terms) are scalars and stay as they are.
IMAGE_OUTPUTS = ("student_preds", "student_flows", "mask", "teacher_pred", "teacher_flows", "reference_init_flows",
                 "flows", "fusion_weights", "warped", "fused", "residual")


class InputPadder:
    """Pads tensors whose last two dims are `shape[-2:]` up to multiples of `multiple`, and crops back."""

    def __init__(self, shape: Sequence[int], multiple: int, mode: str = "replicate") -> None:
        if multiple < 1:
            raise ValueError(f"InputPadder: multiple={multiple}; expected an integer >= 1")
        if mode not in ("replicate", "constant"):
            raise ValueError(f"InputPadder: mode={mode!r}; expected 'replicate' or 'constant'")
        self.mode = mode
        self.height, self.width = int(shape[-2]), int(shape[-1])
        self.pad_h = (-self.height) % multiple
        self.pad_w = (-self.width) % multiple

    @property
    def size(self) -> tuple[int, int]:
        """The original (H, W)."""
        return self.height, self.width

    @property
    def needed(self) -> bool:
        """Whether the size is not yet a multiple (pad would change the tensors)."""
        return bool(self.pad_h or self.pad_w)

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.height + self.pad_h, self.width + self.pad_w

    def _pad_one(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"InputPadder.pad: got a tensor of size {tuple(x.shape[-2:])}, expected {self.size}")
        if not self.needed:
            return x
        # F.pad's replicate mode wants [N, C, H, W]: fold any leading dims (the window) into N.
        flat = x.reshape(-1, *x.shape[-3:])
        flat = F.pad(flat, (0, self.pad_w, 0, self.pad_h), mode=self.mode)
        return flat.reshape(*x.shape[:-2], *flat.shape[-2:])

    def pad(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Each input ([..., C, H, W]) padded to the multiple (the same tensor when no padding is needed)."""
        return [self._pad_one(x) for x in inputs]

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """`x` ([..., H', W'] at the padded size) cropped to the original size."""
        if tuple(x.shape[-2:]) != self.padded_size:
            raise ValueError(f"InputPadder.unpad: got a tensor of size {tuple(x.shape[-2:])}, expected the padded "
                             f"size {self.padded_size}")
        return x[..., : self.height, : self.width]

    def unpad_outputs(self, aux: dict[str, Any]) -> dict[str, Any]:
        """The model's aux dict with its image entries (IMAGE_OUTPUTS) cropped; other entries as they are."""
        out = dict(aux)
        for key in IMAGE_OUTPUTS:
            value = aux.get(key)
            if isinstance(value, torch.Tensor):
                out[key] = self.unpad(value)
            elif isinstance(value, (list, tuple)):
                out[key] = [self.unpad(v) for v in value]
        return out
