"""lift.tune.study_folder: a study folder is made once, resumed only by the same study, driven by one
process at a time, and a damaged file in it is refused in one line naming the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from lift.tune.ledger import TrialLedger, entry_for
from lift.tune.search import sqlite_storage
from lift.tune.study_config import StudyError, load_study_config, study_to_yaml
from lift.tune.study_folder import (
    StageClock,
    StudyPaths,
    check_study_folder,
    driven_folder,
    hold_folder,
    prepare_folder,
    read_stored_study,
    refuse_if_held,
)

REPO = Path(__file__).resolve().parents[2]


def test_study_folder_rules(tmp_path: Path, tiny_study) -> None:
    cfg = load_study_config("footage", list(tiny_study))
    paths = StudyPaths(tmp_path / "s")
    prepare_folder(paths, cfg, resume=False)
    assert paths.study_yaml.is_file()
    with pytest.raises(StudyError, match="pass --resume"):
        prepare_folder(paths, cfg, resume=False)
    other = load_study_config("footage", [*tiny_study, "search.num_samples=5"])
    with pytest.raises(StudyError, match=r"search.num_samples: 2 -> 5"):
        prepare_folder(paths, other, resume=True)
    # Resources may change between sessions; the rest is the study.
    moved = load_study_config("footage", [*tiny_study, "resources.cpus_per_trial=2"])
    assert prepare_folder(paths, moved, resume=True).resources.cpus_per_trial == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(StudyError, match="not a study folder"):
        prepare_folder(StudyPaths(tmp_path / "busy"), cfg, resume=True)
    with pytest.raises(StudyError, match="not a study folder"), hold_folder(StudyPaths(tmp_path / "busy")):
        pass
    assert not (tmp_path / "busy" / ".lock").exists()


@pytest.fixture
def study_folder(tmp_path: Path, tiny_study) -> StudyPaths:
    """A study folder as an interrupted study leaves it: study.yaml, state.json, a ledger entry, optuna.db."""
    cfg = load_study_config("footage", list(tiny_study))
    paths = StudyPaths(tmp_path / "study")
    prepare_folder(paths, cfg, resume=False)
    StageClock(paths).add("validate", 1.0, slots=1)
    optuna.create_study(storage=sqlite_storage(paths.optuna_db), study_name="arm").add_trial(
        optuna.trial.create_trial(value=1.0))
    config = {"optim.lr": 1e-3, "study": {"stage": "tune", "arm": "window=3", "seed": 0}}
    TrialLedger(paths.ledger).record(entry_for("t1", config, {"val_psnr": 20.0, "training_iteration": 3},
                                               path=str(paths.trials_dir / "a_t1"), checkpoint=None))
    assert check_study_folder(paths).search.num_samples == 2
    return paths


def _refused(paths: StudyPaths, file: Path, what: str) -> str:
    with pytest.raises(StudyError) as err:
        check_study_folder(paths)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(file)) and what in message, message
    return message


def test_a_truncated_study_yaml_that_still_parses_is_refused(study_folder: StudyPaths) -> None:
    text = study_folder.study_yaml.read_text()
    study_folder.study_yaml.write_text(text[:text.index("\nsearch:") + 1])  # valid YAML, no search section
    assert "search" not in __import__("yaml").safe_load(study_folder.study_yaml.read_text())
    message = _refused(study_folder, study_folder.study_yaml, "sections search, asha, confirm, report, resources, "
                                                              "failure are missing")
    assert "new --out" in message
    # Cut within its last section, or within the digest line: the digest no longer matches.
    cut = text.rindex("max_failures")
    study_folder.study_yaml.write_text(text[:cut] + text[text.index("# sha256: "):])
    _refused(study_folder, study_folder.study_yaml, "does not match the SHA-256 digest")
    study_folder.study_yaml.write_text(text[:-20])
    _refused(study_folder, study_folder.study_yaml, "does not match the SHA-256 digest")


def test_an_unparsable_or_edited_study_yaml_is_refused(study_folder: StudyPaths) -> None:
    text = study_folder.study_yaml.read_text()
    body, digest = text.rstrip("\n").rsplit("\n", 1)
    study_folder.study_yaml.write_text("name: [unclosed\n" + body[5:] + "\n" + digest + "\n")
    _refused(study_folder, study_folder.study_yaml, "digest")
    study_folder.study_yaml.write_text("name: [unclosed\nseed: 0\n")  # no digest, and not YAML
    _refused(study_folder, study_folder.study_yaml, "not valid YAML at line")
    study_folder.study_yaml.write_text(body.replace("num_samples: 2", "num_samples: 3") + "\n" + digest + "\n")
    _refused(study_folder, study_folder.study_yaml, "digest")


def test_a_study_yaml_from_before_the_digest_needs_every_section(study_folder: StudyPaths, tiny_study) -> None:
    cfg = load_study_config("footage", list(tiny_study))
    study_folder.study_yaml.write_text(study_to_yaml(cfg))  # as written before the digest existed
    assert read_stored_study(study_folder).search.num_samples == 2
    text = study_to_yaml(cfg)
    study_folder.study_yaml.write_text(text[:text.index("\nsearch:") + 1])
    _refused(study_folder, study_folder.study_yaml, "sections search, asha, confirm, report, resources, failure "
                                                    "are missing")


def test_a_damaged_state_ledger_entry_or_optuna_db_is_refused(study_folder: StudyPaths) -> None:
    state = study_folder.state.read_text()
    study_folder.state.write_text(state[:len(state) // 2])
    assert "delete it to resume" in _refused(study_folder, study_folder.state, "not valid JSON")
    with pytest.raises(StudyError, match="state.json: not valid JSON"):
        StageClock(study_folder)
    study_folder.state.write_text(state)

    entry = study_folder.ledger / "t1.json"
    whole = entry.read_text()
    entry.write_text(whole[:40])
    assert "delete it and resume" in _refused(study_folder, entry, "damaged ledger entry (not valid JSON: truncated")
    entry.write_text(json.dumps({**json.loads(whole), "trial_id": "t2"}))
    _refused(study_folder, entry, "it names trial 't2'")
    entry.write_text(whole)

    db = study_folder.optuna_db.read_bytes()
    study_folder.optuna_db.write_bytes(b"\0" * 100 + db[100:])  # header destroyed
    message = _refused(study_folder, study_folder.optuna_db, "not a readable SQLite database")
    assert "cannot be rebuilt in place" in message
    study_folder.optuna_db.write_bytes(b"")  # emptied: SQLite opens it, Optuna's tables are gone
    _refused(study_folder, study_folder.optuna_db, "holds no Optuna tables")
    study_folder.optuna_db.write_bytes(db)
    check_study_folder(study_folder)


_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from lift.tune.study_folder import StudyPaths, hold_folder
    with hold_folder(StudyPaths(Path(sys.argv[1]))):
        print("held", flush=True)
        time.sleep(600)
""")


def test_one_process_drives_a_folder_and_a_dead_holder_releases_it(tmp_path: Path) -> None:
    paths = StudyPaths(tmp_path / "study")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(paths.root)], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StudyError) as err, hold_folder(paths):
            pass
        message = str(err.value)
        with pytest.raises(StudyError, match=f"pid {holder.pid} "):
            refuse_if_held(paths)
        assert f"another driver holds this study (pid {holder.pid} on host " in message and "started 20" in message
        assert driven_folder() is None
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock, as a crashed driver does
        holder.wait()
    # The kernel released the dead holder's lock: the next driver takes it over.
    refuse_if_held(paths)
    with hold_folder(paths) as held, hold_folder(paths):  # re-entrant within a process
        assert driven_folder() == held
        refuse_if_held(paths)
        assert json.loads(paths.lock.read_text())["pid"] == os.getpid()
    assert driven_folder() is None
