"""`python -m lift.data prepare`: fills the frame cache that training then reads without decoding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lift.data import build_dataset
from lift.data.__main__ import main
from lift.data.decode import STATS

from .conftest import data_cfg, read_code


def test_prepare_video_folder_then_train_without_decoding(tmp_path: Path, avi_copy: Path, capsys) -> None:
    (avi_copy / "broken.avi").write_bytes(b"\x00junk" * 40)
    out = tmp_path / "frames"
    assert main(["prepare", "video_folder", "--root", str(avi_copy), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "prepared 5 of 6" in text and "broken.avi" in text and f"data.cache_dir={out}" in text
    assert len(list(out.glob("*.npy"))) == 5  # four videos and the PNG folder
    decoded, images = STATS.videos_decoded, STATS.images_read
    assert (decoded, images) == (4, 20)
    ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_copy), cache_dir=str(out), on_bad_video="skip",
                                window=5), "all", train=True)
    for i in range(len(ds)):
        assert read_code(ds[i]["target"]) == ds[i]["target_index"]
    assert STATS.videos_decoded == decoded and STATS.images_read == images
    # A second run finds everything cached.
    assert main(["prepare", "video_folder", "--root", str(avi_copy), "--out", str(out)]) == 0
    assert STATS.videos_decoded == decoded


def test_prepare_with_frame_size_and_errors(tmp_path: Path, avi_copy: Path) -> None:
    out = tmp_path / "small"
    assert main(["prepare", "video_folder", "--root", str(avi_copy), "--out", str(out), "--frame_size", "24", "32"]) == 0
    ds = build_dataset(data_cfg(tmp_path, data_root=str(avi_copy), cache_dir=str(out), frame_size=[24, 32],
                                crop_size=[16, 16]), "all")
    before = STATS.videos_decoded
    assert ds[0]["target"].shape == (3, 24, 32) and STATS.videos_decoded == before
    assert main(["prepare", "vimeo", "--out", str(out)]) == 2
    assert main(["prepare", "ucf101", "--root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert main(["prepare", "synthetic", "--out", str(out)]) == 0
    (avi_copy / "broken.avi").write_bytes(b"\x00junk" * 40)
    assert main(["prepare", "video_folder", "--root", str(avi_copy), "--out", str(out), "--on_bad_video",
                 "error"]) == 2


def test_module_entry_point_and_ids_stable_across_processes(tmp_path: Path, avi_folder: Path) -> None:
    out = tmp_path / "frames"
    script = ("import sys; from lift.config import DataConfig; from lift.data import build_dataset; "
              f"c = DataConfig(data_root={str(avi_folder)!r}, cache_dir={str(tmp_path / 'c2')!r}, segment_length=8, "
              "eval_max_window=5); print('\\n'.join(build_dataset(c, 'val').sample_ids))")
    procs = [
        subprocess.Popen([sys.executable, "-m", "lift.data", "prepare", "video_folder", "--root", str(avi_folder),
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        # Another hash seed: ids and splits must not depend on Python's salted hash().
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}),
    ]
    (prep_out, prep_err), (ids_out, ids_err) = (p.communicate(timeout=180) for p in procs)
    assert procs[0].returncode == 0, prep_err
    assert "prepared 5 of 5" in prep_out and len(list(out.glob("*.npy"))) == 5
    assert procs[1].returncode == 0, ids_err
    here = build_dataset(data_cfg(tmp_path, data_root=str(avi_folder), segment_length=8, eval_max_window=5,
                                  eval_targets_per_video=8), "val").sample_ids
    assert ids_out.split() == here and len(here) > 0


@pytest.mark.parametrize("where", ["file", "under_file", "/proc", "/sys"])
def test_unwritable_out_is_refused_before_decoding(tmp_path: Path, avi_copy: Path, capsys, where: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"file": afile, "under_file": afile / "cache", "/proc": Path("/proc/lift_cache"),
           "/sys": Path("/sys/lift_cache")}[where]
    before = STATS.videos_decoded
    assert main(["prepare", "video_folder", "--root", str(avi_copy), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {out}:") and len(err.splitlines()) == 1
    assert STATS.videos_decoded == before and afile.read_text() == "x"
