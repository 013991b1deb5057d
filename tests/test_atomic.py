"""lift.atomic: a write that fails midway leaves the previous file and no temporary behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lift.atomic import (OutputPathError, atomic_path, atomic_write_text, check_output_dir, remove_stale_temporaries_in,
                         stale_temporaries, temporary_path, write_json)


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
