"""Fixtures of the data tests: real on-disk layouts built from real frames of the bundled clips.

Every frame carries its frame index as a row of eight 8x8 black/white blocks along the bottom edge
(bit b of the index = block b), aligned to the codec's 8x8 blocks so that it survives lossy MPEG-4 /
H.264 coding. `read_code` recovers the index from a decoded frame, which lets tests assert exact
frame indexing (B-frames included) and the exact window geometry.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from lift.config import DataConfig
from lift.data.decode import STATS, decode_video

H, W = 48, 64  # fixture frame size (multiple of 8 in both directions, even for yuv420p)
CODE_ROWS = 8


def paint_code(frame: np.ndarray, index: int) -> np.ndarray:
    out = frame.copy()
    h = out.shape[0]
    for bit in range(8):
        out[h - CODE_ROWS:h, bit * 8:(bit + 1) * 8] = 255 if (index >> bit) & 1 else 0
    return out


def read_code(frame: np.ndarray | torch.Tensor) -> int:
    """Index painted by `paint_code`; accepts uint8 HxWx3 arrays or float [3, H, W] tensors in [0, 1]."""
    if isinstance(frame, torch.Tensor):
        frame = (frame.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    h = frame.shape[0]
    assert frame.shape[:2] == (H, W), f"codes are read from whole {H}x{W} frames, got {frame.shape[:2]}"
    return sum(1 << bit for bit in range(8)
               if frame[h - CODE_ROWS:h, bit * 8:(bit + 1) * 8].astype(np.float64).mean() > 127.5)


@pytest.fixture(scope="session")
def real_frames(carphone_clip: Path) -> np.ndarray:
    """120 real frames (carphone_pristine) resized to 64x48, uint8 [120, 48, 64, 3]."""
    frames = decode_video(carphone_clip, (H, W))
    assert frames.shape == (120, H, W, 3)
    return frames


@pytest.fixture(scope="session")
def coded(real_frames: np.ndarray) -> Callable[[int, int], list[np.ndarray]]:
    """coded(n, start): n real frames beginning at `start` (wrapping), frame i painted with code i."""

    def make(n: int, start: int = 0) -> list[np.ndarray]:
        return [paint_code(real_frames[(start + i) % len(real_frames)], i) for i in range(n)]

    return make


def write_video(path: Path, frames: list[np.ndarray], codec: str = "mpeg4", b_frames: int = 2,
                pix_fmt: str = "yuv420p", fmt: str | None = None, options: dict[str, str] | None = None,
                input_format: str = "rgb24", container_options: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = pix_fmt
        if b_frames:
            stream.codec_context.max_b_frames = b_frames
        opts = {"qscale": "2"} if options is None and codec == "mpeg4" else (options or {})
        stream.options = opts
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr, format=input_format)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def packet_positions(path: Path) -> list[int]:
    """Byte offsets of the video packets: cutting a file at one leaves only whole packets before it."""
    with av.open(str(path)) as container:
        return [p.pos for p in container.demux(video=0) if p.pos is not None]


def cut_at_packet(path: Path, keep: int) -> Path:
    """Truncate `path` in place after its first `keep` packets; the header still declares them all."""
    path.write_bytes(path.read_bytes()[: packet_positions(path)[keep]])
    return path


def count_b_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for f in container.decode(video=0) if f.pict_type == av.video.frame.PictureType.B)


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def data_cfg(tmp_path: Path, **kw) -> DataConfig:
    """A DataConfig for tests: no augmentation unless asked, cache under tmp_path, tiny crops."""
    base = dict(dataset="video_folder", data_root=None, crop_size=[48, 64], augment=False,
                cache_dir=str(tmp_path / "cache"), eval_targets_per_video=4, num_workers=0)
    base.update(kw)
    return DataConfig(**base)


@pytest.fixture(autouse=True)
def _reset_stats() -> None:
    STATS.reset()


@pytest.fixture(scope="session")
def avi_folder(tmp_path_factory: pytest.TempPathFactory, coded) -> Path:
    """Four MPEG-4 AVIs with B-frames (24 frames each) and one folder of PNG frames (20 frames)."""
    root = tmp_path_factory.mktemp("video_folder")
    for k, name in enumerate(("alpha", "bravo", "charlie", "delta")):
        write_video(root / f"{name}.avi", coded(24, start=10 * k))
    for i, frame in enumerate(coded(20, start=77)):
        write_png(root / "echo" / f"{i:04d}.png", frame)
    (root / "notes.txt").write_text("not a video")
    return root


@pytest.fixture
def avi_copy(tmp_path: Path, avi_folder: Path) -> Path:
    """A private copy of `avi_folder` that a test may damage."""
    dst = tmp_path / "videos"
    shutil.copytree(avi_folder, dst)
    return dst
