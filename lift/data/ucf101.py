"""UCF-101 raw videos (``ucf101``) and the DVF interpolation triplets used by RIFE (``ucf101_triplets``).

``ucf101``: ``data_root`` holds the two official archives extracted side by side::

    UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi
    ucfTrainTestlist/trainlist01.txt  (``Class/v_...avi label``), testlist01.txt (``Class/v_...avi``),
                     classInd.txt, and the 02/03 lists

``data.ucf_split`` (1, 2, 3) picks the official split. ``test`` is the test list; ``val`` is a
deterministic subset of the training list chosen by group number ``gXX`` (all classes' clips of those
groups); ``train`` is the rest of the training list; ``all`` is both lists. Groups (one actor and
setting) therefore never sit on two sides; lists whose train and test share a group are rejected.
Videos are decoded sequentially (packed B-frames make timestamps unreliable) and cached.

``ucf101_triplets``: ``data_root`` is the ``ucf101_interp_ours/`` folder (or its parent) holding
``<id>/frame_00.png, frame_01_gt.png, frame_02.png``: window 3, gap 2 only; splits ``test``/``all``.
"""

from __future__ import annotations

import re
from pathlib import Path

from lift.data.base import BaseVideoDataset, DatasetError, require_dir, require_file
from lift.data.decode import natural_key
from lift.data.registry import register_dataset
from lift.data.sources import ImageSequenceSource, Sequence, VideoFileSource
from lift.data.splits import holdout_groups

UCF_LAYOUT = ("UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi and ucfTrainTestlist/ "
              "(trainlist0N.txt, testlist0N.txt) side by side")
_VIDEO_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)\.avi$", re.IGNORECASE)
TRIPLET_FILES = ("frame_00.png", "frame_01_gt.png", "frame_02.png")


def ucf_root(data_root: str | None) -> Path:
    root = require_dir(data_root, "ucf101 data_root", UCF_LAYOUT)
    for sub in ("UCF-101", "ucfTrainTestlist"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"ucf101: {root / sub} does not exist; expected {UCF_LAYOUT} in {root}")
    return root


def read_ucf_list(path: Path) -> list[tuple[str, str]]:
    """(relative video path, group ``gXX``) for every line of a trainlist/testlist file."""
    require_file(path, "ucf101 split list")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        rel = fields[0].replace("\\", "/")
        match = _VIDEO_NAME.match(Path(rel).name)
        if len(fields) > 2 or "/" not in rel or match is None:
            raise DatasetError(f"{path}:{lineno}: expected 'Class/v_Class_gXX_cYY.avi [label]', got {line.strip()!r}")
        out.append((rel, f"g{int(match['group']):02d}"))
    return out


def ucf_cluster(video_id: str) -> str:
    """The independent source of a UCF-101 clip: ``v_<Class>_g<NN>`` (one actor and setting; its clips
    ``_c01``, ``_c02``... are cut from it). The triplets' ids, which name no group, are their own source."""
    match = _VIDEO_NAME.match(f"{video_id}.avi")
    if match is None:
        return video_id
    return f"v_{match['cls']}_g{int(match['group']):02d}"


class _CaseInsensitiveFinder:
    """Resolves list entries whose case differs from the files (the official lists have such entries)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._dirs: dict[Path, dict[str, Path]] = {}

    def _listing(self, folder: Path) -> dict[str, Path]:
        if folder not in self._dirs:
            self._dirs[folder] = {p.name.lower(): p for p in folder.iterdir()} if folder.is_dir() else {}
        return self._dirs[folder]

    def find(self, rel: str) -> Path | None:
        exact = self.base / rel
        if exact.is_file():
            return exact
        cur = self.base
        for part in rel.split("/"):
            nxt = self._listing(cur).get(part.lower())
            if nxt is None:
                return None
            cur = nxt
        return cur if cur.is_file() else None


@register_dataset
class UCF101Dataset(BaseVideoDataset):
    name = "ucf101"

    def discover(self) -> list[Sequence]:
        root = ucf_root(self.cfg.data_root)
        n = self.cfg.ucf_split
        lists = root / "ucfTrainTestlist"
        train = read_ucf_list(lists / f"trainlist0{n}.txt")
        test = read_ucf_list(lists / f"testlist0{n}.txt")
        shared = sorted({g for _, g in train} & {g for _, g in test})
        if shared:
            raise DatasetError(f"ucf101 split {n}: {lists / f'trainlist0{n}.txt'} and {lists / f'testlist0{n}.txt'} "
                               f"share groups {', '.join(shared)}; a split by group must keep them apart")
        if self.split == "test":
            entries = test
        elif self.split == "all":
            entries = train + test
        else:
            val_groups = holdout_groups({g for _, g in train}, self.cfg.val_fraction, salt=f"ucf101-val-{n}")
            want_val = self.split == "val"
            entries = [(rel, g) for rel, g in train if (g in val_groups) == want_val]
        finder = _CaseInsensitiveFinder(root / "UCF-101")
        seqs = []
        for rel, group in entries:
            path = finder.find(rel)
            if path is None:
                self.bad(root / "UCF-101" / rel, "video listed in the split file does not exist")
                continue
            seqs.append(Sequence(path.stem, VideoFileSource(path, self.frame_size, self.cache_dir), group=group,
                                 cluster=ucf_cluster(path.stem)))
        return seqs


@register_dataset
class UCF101TripletsDataset(BaseVideoDataset):
    name = "ucf101_triplets"
    fixed_length = 3
    supported_splits = ("test", "all")

    def discover(self) -> list[Sequence]:
        root = require_dir(self.cfg.data_root, "ucf101_triplets data_root",
                           "ucf101_interp_ours/<id>/frame_00.png, frame_01_gt.png, frame_02.png")
        if (root / "ucf101_interp_ours").is_dir():
            root = root / "ucf101_interp_ours"
        folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: natural_key(p.name))
        if not folders:
            raise DatasetError(f"ucf101_triplets: no triplet folders in {root}; expected <id>/{', '.join(TRIPLET_FILES)}")
        seqs = []
        for folder in folders:
            files = [folder / f for f in TRIPLET_FILES]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                self.bad(folder, f"triplet folder lacks {', '.join(missing)}")
                continue
            seqs.append(Sequence(folder.name, ImageSequenceSource(files, self.frame_size, self.cache_dir,
                                                                  name=f"ucf101_triplet_{folder.name}")))
        return seqs
