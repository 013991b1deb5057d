"""Atomic file writes, used for every result the product keeps (configs, checkpoints, tables, plots,
JSON results: :func:`write_json` is the one JSON writer, with the one NaN/inf policy).

The content goes to a temporary file beside the target, is flushed to disk, and is renamed onto the
target: a process killed midway leaves the previous file intact and never a partial one in its place.
Before the rename the file gets the mode a plain ``open`` would give it (0o666 less the umask:
0644 under umask 022), not the 0600 of ``mkstemp``: results are meant for colleagues too.

A write that fails because the disk is full, read-only or not ours (ENOSPC, EDQUOT, EROFS, EACCES,
EPERM) raises :class:`OutputWriteError`, which names the folder, after removing its temporary; the
command lines print it as one line and exit 2.

Temporaries are named ``.<target name>.<random>.tmp`` (``.tmp<suffix>`` for writers that need the
target's extension, such as video muxers), unique per writer, so two writers never share one. A
process killed mid-write leaves its temporary behind; :func:`remove_stale_temporaries` deletes those
of one target. Only the single owner of a target may call it (e.g. a training run for its own
checkpoints, when the next write of the same target or the resume starts): the temporary of a
concurrent writer of the same file would look stale too.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class OutputPathError(ValueError):
    """An output location cannot be written; the message names the option, the path and why."""


class OutputWriteError(OutputPathError, OSError):
    """A write failed on the disk's side (full, read-only, no permission); names the folder. Also an
    OSError, so callers that already caught the raw OSError of a failed write still do."""


# The errors that say "this folder cannot take the file", as opposed to a bug in the writer.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def disk_error(err: BaseException, path: str | os.PathLike[str]) -> OutputWriteError | None:
    """`err` as an OutputWriteError naming the folder of `path`, if it is a disk-side failure."""
    if not isinstance(err, OSError) or err.errno not in DISK_ERRNOS:
        return None
    folder = Path(path).parent
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
            errno.EROFS: "the filesystem is read-only"}.get(err.errno, "permission denied")
    return OutputWriteError(f"cannot write {Path(path).name} in {folder}: {what} ({os.strerror(err.errno)})")


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (another thread creating a
    file meanwhile would otherwise get umask 0)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Give a finished temporary the mode of a newly created file and rename it onto `path`."""
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, path)


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Fail before any work starts when folder `path` (given by command-line `option`) cannot be
    created or written: a file where the folder should be, a folder under a file, a read-only or
    virtual filesystem (/proc, /sys), no permission. Nothing is created."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path}: is a file; expected a folder (or a new path)")
    existing = path
    while not existing.exists():  # the nearest existing ancestor: where the folder would be made
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{option} {path}: {existing} is a file, so no folder can be made under it")
    try:
        temporary_path(existing / ".lift-write-probe").unlink()
    except OSError as err:
        raise OutputPathError(f"{option} {path}: cannot write in {existing} ({err.strerror or err})") from None
    return path


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temporary_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """Create a new, empty, uniquely named temporary file beside `path` and return its path."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    return Path(name)


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """The temporaries of `path` (see the module doc) that are lying beside it."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*") if p.is_file())


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries left beside `path` by killed writers; returns what was removed.

    Only for the single owner of `path` (see the module doc)."""
    removed = []
    for tmp in stale_temporaries(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def remove_stale_temporaries_in(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries of every target in `folder` (not recursive); only for a folder with
    a single writer, such as a run's checkpoints/ when the run resumes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in sorted(p for p in folder.glob(".*.tmp*") if p.is_file()):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True, clean_stale: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it replaces `path`.

    `durable=False` skips the fsyncs, for caches that are rebuilt when an entry is damaged.
    `clean_stale=True` first deletes temporaries of `path` left by killed writers: only for a
    target with a single writer (checkpoints of one run). A full or read-only disk raises
    OutputWriteError (the temporary removed, the previous file intact).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if clean_stale:
            remove_stale_temporaries(path)
        tmp = temporary_path(path)
    except OSError as err:
        raise (disk_error(err, path) or err) from err
    try:
        yield tmp
        if durable and tmp.exists():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        publish(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        converted = disk_error(err, path)
        if converted is not None:
            raise converted from err
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def json_safe(obj: Any) -> Any:
    """Plain JSON values. The one NaN/inf policy of every JSON result: a non-finite number is
    written as ``null`` (JSON has no NaN; strict parsers reject Python's ``NaN`` token), and
    readers treat ``null`` as "no value". numpy scalars become Python numbers, paths strings,
    pandas' missing values null, anything else its ``str``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def write_json(path: str | os.PathLike[str], obj: Any, *, sort_keys: bool = False) -> None:
    """Write `obj` as indented JSON, atomically, with :func:`json_safe`'s NaN/inf policy."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")
