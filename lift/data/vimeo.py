"""Vimeo-90K septuplets.

Layout (``data_root`` is the ``vimeo_septuplet`` folder, or its parent)::

    sequences/<5-digit>/<4-digit>/im1.png .. im7.png
    sep_trainlist.txt   (lines like ``00001/0001``)
    sep_testlist.txt

Seven frames bound the window: window 7 with temporal_offset 1 and gap 2 is the maximum, and
anything larger is a WindowError before a file is read. Splits: ``test`` is the official test list;
``val`` is a deterministic subset of the training list chosen by source folder (the 5-digit folder:
septuplets cut from one source video never sit on both sides); ``train`` is the rest of the list;
``all`` is both lists.
"""

from __future__ import annotations

from pathlib import Path

from lift.data.base import BaseVideoDataset, DatasetError, require_dir, require_file
from lift.data.registry import register_dataset
from lift.data.sources import ImageSequenceSource, Sequence
from lift.data.splits import holdout_groups

LAYOUT = "sequences/<5-digit>/<4-digit>/im1..im7.png with sep_trainlist.txt and sep_testlist.txt beside it"


def vimeo_root(data_root: str | None) -> Path:
    root = require_dir(data_root, "vimeo data_root", LAYOUT)
    if not (root / "sequences").is_dir() and (root / "vimeo_septuplet" / "sequences").is_dir():
        root = root / "vimeo_septuplet"
    if not (root / "sequences").is_dir():
        raise FileNotFoundError(f"vimeo: {root / 'sequences'} does not exist; expected {LAYOUT}")
    return root


def read_list(path: Path) -> list[str]:
    """Septuplet ids (``00001/0001``) of a split file, validated line by line."""
    require_file(path, "vimeo split list")
    ids = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        entry = line.strip()
        if not entry:
            continue
        parts = entry.split("/")
        if len(parts) != 2 or not all(parts):
            raise DatasetError(f"{path}:{lineno}: expected a septuplet id like 00001/0001, got {entry!r}")
        ids.append(entry)
    return ids


@register_dataset
class VimeoSeptupletDataset(BaseVideoDataset):
    name = "vimeo"
    fixed_length = 7

    def discover(self) -> list[Sequence]:
        root = vimeo_root(self.cfg.data_root)
        if self.split == "test":
            ids = read_list(root / "sep_testlist.txt")
        elif self.split == "all":
            ids = read_list(root / "sep_trainlist.txt") + read_list(root / "sep_testlist.txt")
        else:
            train_ids = read_list(root / "sep_trainlist.txt")
            val_groups = holdout_groups({i.split("/")[0] for i in train_ids}, self.cfg.val_fraction, salt="vimeo-val")
            want_val = self.split == "val"
            ids = [i for i in train_ids if (i.split("/")[0] in val_groups) == want_val]
        seqs = []
        for sid in ids:
            folder = root / "sequences" / sid
            if not folder.is_dir():
                self.bad(folder, "septuplet folder listed in the split file does not exist")
                continue
            files = [folder / f"im{k}.png" for k in range(1, 8)]
            seqs.append(Sequence(sid, ImageSequenceSource(files, self.frame_size, self.cache_dir,
                                                          name=sid.replace("/", "_")),
                                 group=sid.split("/")[0]))
        return seqs
