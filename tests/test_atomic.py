"""lift.atomic: a write that fails midway leaves the previous file and no temporary behind."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lift.atomic import (OutputPathError, OutputWriteError, atomic_path, atomic_write_text, check_output_dir,
                         current_umask, remove_stale_temporaries_in, stale_temporaries, temporary_path, write_json)


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_on_success(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "sub" / "result.txt"
    atomic_write_text(target, "old")
    with atomic_path(target, durable=durable) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible before the block ends
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["result.txt"]


def test_failure_midway_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    atomic_write_text(target, "previous")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_each_writer_gets_its_own_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    a, b = temporary_path(target, ".tmp.mp4"), temporary_path(target, ".tmp.mp4")
    assert a != b and a.parent == b.parent == tmp_path and a.suffix == ".mp4"
    assert set(stale_temporaries(target)) == {a, b}


def test_stale_temporaries_of_a_target_are_removed_by_its_next_write(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    stale = tmp_path / ".last.pt.abc123.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"half")
    other = tmp_path / ".best.pt.abc123.tmp"  # another target's: not this write's business
    other.write_bytes(b"half")
    atomic_write_text(target, "a")  # the default keeps them: other writers may share a folder
    assert stale.exists()
    with atomic_path(target, clean_stale=True) as tmp:
        tmp.write_text("b")
    assert target.read_text() == "b" and not stale.exists() and other.exists()
    assert remove_stale_temporaries_in(tmp_path) == [other]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_glob_characters_in_a_target_name_are_literal(tmp_path: Path) -> None:
    (tmp_path / ".run[1].pt.x.tmp").write_text("")
    (tmp_path / ".run1.pt.x.tmp").write_text("")
    assert [p.name for p in stale_temporaries(tmp_path / "run[1].pt")] == [".run[1].pt.x.tmp"]


def test_output_folders_that_cannot_be_written_are_named(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing created
    cases = {afile: "is a file; expected a folder", afile / "sub": f"{afile} is a file, so no folder",
             Path("/proc/lift_out"): "cannot write in /proc", Path("/sys/lift_out"): "cannot write in /sys"}
    for path, needle in cases.items():
        with pytest.raises(OutputPathError, match="^--out ") as err:
            check_output_dir(path, "--out")
        assert needle in str(err.value) and str(path) in str(err.value)
    assert afile.read_text() == "x"


def test_write_json_has_one_nan_policy_for_every_result(tmp_path) -> None:
    """NaN and +-inf are written as null (strict JSON), numpy scalars as numbers, paths as strings."""
    path = tmp_path / "sub" / "r.json"
    write_json(path, {"nan": float("nan"), "inf": np.float32("inf"), "x": np.float64(1.5), "n": np.int64(3),
                      "ok": np.bool_(True), "p": tmp_path, "rows": [(1, float("-inf"))], 2: None})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("\n")
    assert json.loads(text) == {"nan": None, "inf": None, "x": 1.5, "n": 3, "ok": True, "p": str(tmp_path),
                                "rows": [[1, None]], "2": None}
    write_json(path, {"b": 1, "a": 2}, sort_keys=True)
    assert list(json.loads(path.read_text())) == ["a", "b"]
    assert not list(path.parent.glob(".*.tmp"))  # atomic: no temporary left behind


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path: Path, umask_022: None) -> None:
    """Colleagues on a shared cluster must read results: 0644 under umask 022, like a plain open()."""
    atomic_write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"a": 1})
    with atomic_path(tmp_path / "c.parquet") as tmp:
        pd.DataFrame({"a": [1.0]}).to_parquet(tmp)
    for name in ("a.txt", "b.json", "c.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.txt", "x")
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
    assert current_umask() == 0o077


def test_a_full_disk_names_the_folder_and_keeps_the_previous_file(small_disk: Path) -> None:
    target = small_disk / "r.json"
    write_json(target, {"previous": True})
    with pytest.raises(OutputWriteError, match=rf"^cannot write r.json in {small_disk}: the disk is full"):
        write_json(target, {"big": "x" * 2**20})
    assert json.loads(target.read_text()) == {"previous": True}
    assert [p.name for p in small_disk.iterdir()] == ["r.json"]  # no temporary left to trip a resume
    with pytest.raises(OSError):  # what callers caught before (e.g. lift.report's `except OSError`)
        write_json(target, {"big": "x" * 2**20})


def test_a_read_only_disk_names_the_folder(read_only_disk: Path) -> None:
    with pytest.raises(OutputWriteError, match=rf"^cannot write t.txt in {read_only_disk / 'sub'}: the filesystem "
                                               "is read-only"):
        atomic_write_text(read_only_disk / "sub" / "t.txt", "x")
    with pytest.raises(OutputPathError, match="Read-only file system"):  # the CLIs' pre-flight check says so too
        check_output_dir(read_only_disk / "out", "--out")


def test_other_os_errors_are_not_disguised_as_disk_errors(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        with atomic_path(tmp_path / "x") as tmp:
            tmp.unlink()
            tmp.mkdir()
            raise IsADirectoryError(21, "Is a directory", str(tmp))
