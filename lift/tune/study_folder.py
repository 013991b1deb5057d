"""The study folder: where each stage's files live, its creation or resume check, its lock, and the
clock that sums stage wall times over driver sessions (layout: :mod:`lift.tune.study`).

A study folder is a self-contained unit: nothing in it names the folder by its absolute path in a
way a resume trusts (the ledger stores paths relative to it; Optuna's storage and the ledger are
re-pointed at the folder being driven, :func:`driven_folder`), so a copy or a moved folder resumes
in place and never writes anywhere else.

One process drives a folder at a time: :func:`hold_folder` takes ``fcntl.flock`` on
``<folder>/.lock`` and writes the holder (pid, host, start time) into it. The kernel releases a
flock when its holder dies, however it dies (SIGKILL, power cut), so a lock left by a crashed
driver is simply taken over by the next one; the file's text is only what the refusal shows.

What a resume reads is verified first (:func:`check_study_folder`): ``study.yaml`` ends with the
SHA-256 of the text above it, ``state.json``, every ledger entry and ``optuna.db`` must be whole;
a damaged file is refused in one line that names it and says what to do.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lift.atomic import atomic_write_text, write_json
from lift.config import dict_differences
from lift.tune.ledger import LEDGER_DIR, TrialLedger
from lift.tune.study_config import StudyConfig, StudyError, study_from_dict, study_to_yaml

TRIALS_RESULT = "trials_result.json"
SUMMARY = "study_summary.json"
STATE = "state.json"
TEST_TABLE = "test_samples.parquet"
SAMPLES = "samples.parquet"
LOCK = ".lock"
DIGEST_PREFIX = "# sha256: "


class StudyInterrupted(RuntimeError):
    """A stage ended with unfinished trials (Ctrl-C, or the driver lost): run again with --resume."""


@dataclass(frozen=True)
class StudyPaths:
    root: Path

    @property
    def study_yaml(self) -> Path:
        return self.root / "study.yaml"

    @property
    def arms_dir(self) -> Path:
        return self.root / "arms"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER_DIR

    @property
    def baselines_dir(self) -> Path:
        return self.root / "baselines"

    @property
    def test_table(self) -> Path:
        return self.root / TEST_TABLE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def lock(self) -> Path:
        return self.root / LOCK


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# study.yaml: the stored plan, with its digest
# ---------------------------------------------------------------------------------------------

def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_study_yaml(paths: StudyPaths, cfg: StudyConfig) -> None:
    """The validated study as YAML, ending with a comment line holding the SHA-256 of the text above
    it: a file cut anywhere loses or breaks that line, so a resume can tell a whole plan from a
    truncated one that still parses (missing sections would silently come back as defaults)."""
    text = study_to_yaml(cfg)
    atomic_write_text(paths.study_yaml, f"{text}{DIGEST_PREFIX}{_digest(text)}\n")


def _damaged(path: Path, what: str, todo: str) -> StudyError:
    return StudyError(f"{path}: {what}; {todo}")


_YAML_TODO = "restore it from a backup or copy of the study, or start the study in a new --out"


def read_stored_study(paths: StudyPaths) -> StudyConfig:
    """The study config stored in study.yaml, verified whole (digest, every section); StudyError in one
    line naming the file otherwise."""
    path = paths.study_yaml
    text = path.read_text(errors="replace")
    body, _, last = text.rstrip("\n").rpartition("\n")
    last = last.strip()
    if last.startswith(DIGEST_PREFIX):
        if _digest(body + "\n") != last.removeprefix(DIGEST_PREFIX).strip():
            raise _damaged(path, "its content does not match the SHA-256 digest written when the study was created "
                                 "(truncated, damaged or edited)", _YAML_TODO)
    elif DIGEST_PREFIX.strip() in text:
        raise _damaged(path, "its digest line is damaged or not its last line", _YAML_TODO)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _damaged(path, f"not valid YAML{where}", _YAML_TODO) from None
    # A study.yaml written before the digest existed: every section must still be there.
    missing = [name for name in StudyConfig().to_dict() if not isinstance(data, dict) or name not in data]
    if missing:
        raise _damaged(path, f"sections {', '.join(missing)} are missing (expected every section of the study "
                             "as written when it was created)", _YAML_TODO)
    try:
        return study_from_dict(data)
    except StudyError as err:
        raise StudyError(f"{path}: {err}") from None


# ---------------------------------------------------------------------------------------------
# The other files a resume reads
# ---------------------------------------------------------------------------------------------

def _check_state(paths: StudyPaths) -> dict[str, Any] | None:
    """state.json as StageClock reads it, or None when there is none yet."""
    if not paths.state.is_file():
        return None
    todo = ("it only holds the stage wall times of earlier sessions: delete it to resume "
            "(the study's overhead figures then count from this session)")
    try:
        state = read_json(paths.state)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _damaged(paths.state, "not valid JSON (truncated or damaged)", todo) from None
    stages = state.get("stages") if isinstance(state, dict) else None
    if not isinstance(stages, dict) or not all(isinstance(v, dict) and "wall_s" in v for v in stages.values()):
        raise _damaged(paths.state, "expected {'stages': {<stage>: {'wall_s': ...}}, 'sessions': N}", todo)
    return state


def _check_optuna_db(paths: StudyPaths) -> None:
    """optuna.db must be a whole SQLite database holding Optuna's tables."""
    path = paths.optuna_db
    if not path.is_file():
        return
    # Why not rebuilt from the ledger: it holds only the finished trials, while the interrupted
    # Tune experiment refers to every Optuna trial (running ones too) by its number in this file.
    todo = (f"the ledger ({paths.ledger}) holds only finished trials, not the running ones the interrupted Tune "
            "experiment refers to, so it cannot be rebuilt in place: restore optuna.db from a backup or copy of the "
            "study, or start the study in a new --out")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            ok = db.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as err:
        raise _damaged(path, f"not a readable SQLite database ({err})", todo) from None
    if not ok or ok[0] != "ok":
        raise _damaged(path, f"SQLite finds it damaged ({ok[0] if ok else 'no answer'})", todo)
    if "studies" not in tables:
        raise _damaged(path, "holds no Optuna tables (emptied or replaced)", todo)


def check_study_folder(paths: StudyPaths) -> StudyConfig:
    """Everything a resume reads, verified before anything runs: the stored study (returned),
    state.json, every ledger entry and optuna.db. StudyError naming the damaged file otherwise."""
    cfg = read_stored_study(paths)
    _check_state(paths)
    TrialLedger(paths.ledger).entries()  # each entry whole, or StudyError naming it
    _check_optuna_db(paths)
    return cfg


# ---------------------------------------------------------------------------------------------
# Creating or resuming, under the folder's lock
# ---------------------------------------------------------------------------------------------

def _refuse_foreign(paths: StudyPaths) -> None:
    """A folder with files but no study.yaml is someone else's: never write into it."""
    if paths.study_yaml.is_file() or not paths.root.exists():
        return
    if any(p.name != LOCK for p in paths.root.iterdir()):
        raise StudyError(f"--out {paths.root}: the folder exists and is not a study folder (no study.yaml); "
                         "choose an empty or new folder")


def prepare_folder(paths: StudyPaths, cfg: StudyConfig, *, resume: bool) -> StudyConfig:
    """Create the study folder, or check that a resumed one was made by the same study config (and
    that everything it holds is whole)."""
    if paths.study_yaml.is_file():
        if not resume:
            raise StudyError(f"--out {paths.root}: a study already lives there; pass --resume to continue it "
                             "or choose another --out")
        stored = check_study_folder(paths)
        diffs = dict_differences(stored.identity(), cfg.identity())
        if diffs:
            raise StudyError(f"--resume {paths.root}: the study config differs from the stored {paths.study_yaml}: "
                             + "; ".join(diffs) + ". Resume with the same settings, or choose another --out")
        # Resources may change between sessions (another machine); the rest is the study.
        stored.resources = cfg.resources
        return stored
    _refuse_foreign(paths)
    paths.root.mkdir(parents=True, exist_ok=True)
    write_study_yaml(paths, cfg)
    return cfg


_held: dict[Path, tuple[int, int]] = {}  # folder -> (fd, depth): the folders this process drives


def driven_folder() -> StudyPaths | None:
    """The study folder this process drives (holds the lock of), if any: what objects unpickled
    from a Tune snapshot re-point their ledger and Optuna storage at (lift.tune.search)."""
    return StudyPaths(next(reversed(_held))) if _held else None


def _holder(paths: StudyPaths) -> str:
    try:
        info = json.loads(paths.lock.read_text())
        return f"pid {info['pid']} on host {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its pid"


def _lock(paths: StudyPaths) -> int:
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (Ray's)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StudyError(f"{paths.root}: another driver holds this study ({_holder(paths)}; lock {paths.lock}); "
                         "wait for it to end, or stop it, then run again with --resume") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    return fd


def refuse_if_held(paths: StudyPaths) -> None:
    """StudyError naming the holder if another process drives `paths` now: lets a command refuse
    before it starts Ray (run_study still takes the lock for the whole run)."""
    if paths.root not in _held and paths.lock.is_file():
        with hold_folder(paths):
            pass


@contextlib.contextmanager
def hold_folder(paths: StudyPaths) -> Iterator[StudyPaths]:
    """Drive `paths` alone: take its lock (creating the folder), or StudyError naming the holder.
    Re-entrant within a process; released on exit, or by the kernel when the process dies."""
    root = paths.root
    if root in _held:
        fd, depth = _held[root]
        _held[root] = (fd, depth + 1)
    else:
        _refuse_foreign(paths)
        root.mkdir(parents=True, exist_ok=True)
        _held[root] = (_lock(paths), 1)
    try:
        yield paths
    finally:
        fd, depth = _held.pop(root)
        if depth > 1:
            _held[root] = (fd, depth - 1)
        else:
            os.close(fd)  # releases the flock; the file stays (removing it would race a new holder)


class StageClock:
    """Wall time per stage summed over driver sessions, kept in state.json."""

    def __init__(self, paths: StudyPaths) -> None:
        self.path = paths.state
        self.state = _check_state(paths) or {"stages": {}, "sessions": 0}
        self.state["sessions"] = int(self.state.get("sessions", 0)) + 1
        self._save()

    def _save(self) -> None:
        write_json(self.path, self.state)

    def add(self, stage: str, seconds: float, *, slots: int | None = None) -> None:
        entry = self.state["stages"].setdefault(stage, {"wall_s": 0.0, "slots": slots})
        entry["wall_s"] = float(entry["wall_s"]) + float(seconds)
        if slots is not None:
            entry["slots"] = slots
        self._save()

    def stages(self) -> dict[str, dict[str, Any]]:
        return self.state["stages"]


def interrupted(what: str, paths: StudyPaths) -> StudyInterrupted:
    return StudyInterrupted(f"{what}; run the study again with --resume to continue ({paths.trials_dir})")
