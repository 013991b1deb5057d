"""lift.atomic: a write that fails midway leaves the previous file and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lift.atomic import atomic_path, atomic_write_text


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
