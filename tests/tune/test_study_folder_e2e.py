"""A study folder is a self-contained unit: an interrupted toy study (its driver, local Ray and
workers killed at once) that is copied with `shutil.copytree` resumes in the copy and finishes
there, without changing one byte of the original; the original, moved with a rename, resumes in
its new place (through the command line, with its own local Ray, as a user would). Everything is
real: lift.train.fit trains a tiny network on the embedded real clips.

The two resumes run in different Ray sessions on purpose: Ray Tune resumes an experiment in the
driver staging folder of the run it restores (``<Ray session>/artifacts/<that run's start
time>/trials``), so two copies of one interrupted experiment resumed in the same Ray session would
share that folder (a limitation of Ray, not of the study folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from lift.tune.ledger import TrialLedger
from lift.tune.study import run_study
from lift.tune.study_config import load_study_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _checksums(folder: Path) -> dict[str, str]:
    """Every file of `folder` (hidden ones too) by its relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _resume(cfg: Any, out: Path) -> dict[str, Any]:
    return run_study(cfg, out, resume=True, verbose=0, log=lambda *_: None, allow_underpowered=True).summary


@pytest.fixture(scope="module")
def relocated(ray_session: str, tiny_study, tmp_path_factory, crashed_study) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("relocate")
    original, copy, moved = root / "original", root / "copy", root / "moved"
    crash = crashed_study(original, tiny_study)
    shutil.copytree(original, copy, symlinks=True)
    before = _checksums(original)
    cfg = load_study_config("footage", list(tiny_study))
    copy_summary = _resume(cfg, copy)
    after_copy = _checksums(original)
    original.rename(moved)
    cli = [sys.executable, str(REPO / "studies" / "context_ablation.py"), "--out", str(moved), "--resume",
           "--no-report", "--verbose", "0", "--allow-underpowered"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "1"},
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    moved_summary = json.loads((moved / "study_summary.json").read_text())
    return {"root": root, "original": original, "copy": copy, "moved": moved, "before": before,
            "after_copy": after_copy, "copy_summary": copy_summary, "moved_summary": moved_summary,
            "recorded": crash["recorded"]}


def _inside(summary: dict[str, Any], folder: Path) -> None:
    """Everything the finished study names lies in `folder`."""
    assert summary["complete"] and summary["folder"] == str(folder.resolve())
    paths = [t["path"] for t in summary["trials"]] + [r["path"] for r in summary["confirm"]]
    paths += [r["test_table"] for r in summary["confirm"]] + [summary["test_table"], summary["baselines"]]
    assert all(Path(p).is_relative_to(folder.resolve()) and Path(p).exists() for p in paths), paths
    assert summary["optuna"]["storage"] == f"sqlite:///{(folder / 'optuna.db').resolve()}"
    for entry in TrialLedger(folder / "ledger").entries().values():
        assert Path(entry["path"]).is_relative_to(folder.resolve()) and Path(entry["path"]).is_dir()


def test_a_resumed_copy_finishes_in_itself_and_leaves_the_original_untouched(relocated) -> None:
    assert relocated["after_copy"] == relocated["before"], "resuming the copy changed the original folder"
    _inside(relocated["copy_summary"], relocated["copy"])
    # The copy's own Optuna storage holds every trial, finished (the original's stayed as the crash left it).
    storage = relocated["copy_summary"]["optuna"]["storage"]
    for name in relocated["copy_summary"]["optuna"]["studies"]:
        states = {t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials}
        assert states <= {"COMPLETE", "PRUNED"}, states
    # Trials finished before the crash kept their outcome in the copy.
    trials = {t["trial_id"]: t for t in relocated["copy_summary"]["trials"]}
    for trial_id, entry in relocated["recorded"].items():
        if entry["stage"] == "tune":
            assert trials[trial_id]["epochs"] == entry["result"]["training_iteration"]


def test_a_moved_folder_resumes_in_its_new_place(relocated) -> None:
    assert not relocated["original"].exists(), "something was written at the folder's old path"
    _inside(relocated["moved_summary"], relocated["moved"])
    assert sorted(p.name for p in relocated["root"].iterdir() if p.is_dir()) == ["copy", "moved"]
