"""X4K1000FPS (XVFI): 1000-fps 4K clips, for large anchor gaps with arbitrary timesteps.

Layout (``data_root`` holds both trees)::

    train/<scene>/<clip>/<frame>.png      (65 frames per clip)
    test/<Type>/<TEST..>/<frame>.png

Every folder two levels below ``train/`` or ``test/`` holding images is one sequence (frames in
natural file-name order), with video id ``train/<scene>/<clip>`` or ``test/<Type>/<name>``. ``test``
is the test tree; ``val`` is a deterministic subset of the training tree chosen by scene (clips of
one scene never sit on both sides); ``train`` is the rest; ``all`` is both trees. 4K frames are large:
set ``data.frame_size`` to resize on decode (the resized frames are cached).
"""

from __future__ import annotations

from pathlib import Path

from lift.data.base import BaseVideoDataset, DatasetError, require_dir
from lift.data.decode import IMAGE_EXTENSIONS, natural_key
from lift.data.registry import register_dataset
from lift.data.sources import ImageSequenceSource, Sequence
from lift.data.splits import holdout_groups

LAYOUT = "train/<scene>/<clip>/<frame>.png and test/<Type>/<TEST..>/<frame>.png"


def _sorted_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


@register_dataset
class X4KDataset(BaseVideoDataset):
    name = "x4k"

    def _tree(self, root: Path, part: str) -> list[Sequence]:
        base = root / part
        if not base.is_dir():
            raise FileNotFoundError(f"x4k: {base} does not exist; expected {LAYOUT} under {root}")
        seqs = []
        for group_dir in _sorted_dirs(base):
            for clip_dir in _sorted_dirs(group_dir):
                files = sorted((f for f in clip_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS),
                               key=lambda f: natural_key(f.name))
                if not files:
                    self.bad(clip_dir, "clip folder holds no frame images")
                    continue
                vid = f"{part}/{group_dir.name}/{clip_dir.name}"
                seqs.append(Sequence(vid, ImageSequenceSource(files, self.frame_size, self.cache_dir,
                                                              name=vid.replace("/", "_")),
                                     group=f"{part}/{group_dir.name}"))
        if not seqs and not self.skipped:
            raise DatasetError(f"x4k: no clip folders with frames under {base}; expected {LAYOUT}")
        return seqs

    def discover(self) -> list[Sequence]:
        root = require_dir(self.cfg.data_root, "x4k data_root", LAYOUT)
        if self.split == "test":
            return self._tree(root, "test")
        if self.split == "all":
            return self._tree(root, "train") + self._tree(root, "test")
        train = self._tree(root, "train")
        val_groups = holdout_groups({s.group for s in train}, self.cfg.val_fraction, salt="x4k-val")
        want_val = self.split == "val"
        return [s for s in train if (s.group in val_groups) == want_val]
