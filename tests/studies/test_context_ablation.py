"""`studies/context_ablation.py`: invalid studies fail before any trial starts, with a clear message;
Ctrl-C is an interruption that resumes."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lift.tune.study_config import load_study_config
from lift.tune.study_folder import StudyPaths, prepare_folder

REPO = Path(__file__).resolve().parents[2]


def _cli():
    spec = importlib.util.spec_from_file_location("context_ablation", REPO / "studies" / "context_ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sets(values) -> list[str]:
    return [arg for kv in values for arg in ("--set", kv)]


def test_window_the_data_cannot_provide_fails_before_ray(tmp_path: Path, tiny_study, capsys) -> None:
    out = tmp_path / "study"
    # The embedded default is cut into 24-frame segments; window 15 at offset 4 spans 51 frames.
    argv = ["--preset", "footage", "--out", str(out), *_sets(tiny_study), "--set", "arms.windows=[3,15]",
            "--set", "arms.offsets=[4]"]
    assert _cli().main(argv) == 2
    err = capsys.readouterr().err
    assert "window=15" in err and "temporal_offset=4" in err and "51" in err and "24" in err
    assert not out.exists()


def test_a_factor_window_the_data_cannot_provide_fails_before_ray(tmp_path: Path, tiny_study, capsys) -> None:
    out = tmp_path / "study"
    argv = ["--preset", "footage", "--out", str(out), *_sets(tiny_study), *_sets(["arms.windows=null", "arms.offsets=null",
            "arms.design=one_at_a_time", "arms.factors.data.window=[15,3]", "arms.factors.data.temporal_offset=[1,4]",
            "arms.factors.model.refine=[true,false]"])]
    assert _cli().main(argv) == 2
    err = capsys.readouterr().err
    assert "window=15" in err and "temporal_offset=4" in err and "51" in err and "24" in err
    assert not out.exists()


@pytest.mark.parametrize("factor, words", [
    ("arms.factors.loss.lpipz=[0,0.1]", ["arms.factors.loss.lpipz", "unknown config key"]),
    ("arms.factors.loss.lpips=[0,0.1]", ["arms.factors.loss.lpips", "search.space"]),
    ("arms.factors.model.refine=[true,maybe]", ["arms.factors.model.refine[1]", "true or false"]),
    ("arms.windows=[3,4]", ["arms.windows[1]", "odd"]),
])
def test_misconfigured_factors_fail_before_ray(tmp_path: Path, tiny_study, factor: str, words: list[str],
                                                capsys) -> None:
    out = tmp_path / "study"
    assert _cli().main(["--preset", "footage", "--out", str(out), *_sets(tiny_study), "--set", factor]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_gpus_the_cluster_lacks_fail_before_any_trial(ray_session: str, tmp_path: Path, tiny_study, capsys) -> None:
    out = tmp_path / "study"
    argv = ["--preset", "footage", "--out", str(out), "--gpus-per-trial", "0.5", "--allow-underpowered",
            *_sets(tiny_study)]
    assert _cli().main(argv) == 2
    assert "the Ray cluster has no GPU" in capsys.readouterr().err
    assert not out.exists()


def test_real_footage_refuses_without_allow_underpowered(tmp_path: Path, tiny_study, capsys) -> None:
    """Three real clips are three independent sources (one per split): no data could reject H0."""
    out = tmp_path / "study"
    assert _cli().main(["--preset", "footage", "--out", str(out), *_sets(tiny_study), "--set", "confirm.seeds=3"]) == 2
    err = capsys.readouterr().err
    assert "cannot reject by design" in err and "3 in all: bigbuckbunny, bikes, carphone_pristine" in err
    assert "smallest achievable p is 1" in err and "5 test sources are needed" in err
    assert "--allow-underpowered" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope"], "study preset 'nope'"),
    (["--set", "search.num_samples=0"], "search.num_samples"),
    (["--num-samples", "0"], "search.num_samples"),
    (["--set", "train.epochs=abc"], "train.epochs"),
    (["--resume"], "--resume needs --out"),
])
def test_bad_arguments_exit_2_with_the_reason(argv: list[str], message: str, capsys) -> None:
    assert _cli().main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_flag_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli().main(["--epochs", "3"])
    assert exc.value.code == 2 and "unrecognized arguments: --epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_after_a_finished_trial_is_interrupted_and_resumes(tmp_path: Path, tiny_study, sigint_at) -> None:
    """Ctrl-C (SIGINT to the driver's process group, as a terminal sends it) after finished trials:
    exit 130 and the resume command, not a failed study; the resume then completes it."""
    out = tmp_path / "study"
    cmd = [sys.executable, str(REPO / "studies" / "context_ablation.py"), "--preset", "footage", "--out", str(out),
           # 4 slots: every tuning trial runs at once, so Ctrl-C reaches them all (a failure before)
           "--cpus-per-trial", "0.5", "--no-report", "--allow-underpowered",
           *_sets([*tiny_study, "train.epochs=1", "asha.grace_period=1"])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    # Once the window-3 arm has finished tuning, while window 7 (slower) still trains: the arm whose
    # trials the signal cut short then looked like an arm without a full-budget trial (exit 1).
    def one_arm_tuned(text: str) -> bool:
        return len(re.findall(r"^\[tune \d+/4\] window=3 trial", text, re.M)) == 2

    got = sigint_at(cmd, one_arm_tuned, env=env, timeout_s=400)
    assert got.signalled, got.stdout[-3000:] + got.stderr[-3000:]
    assert got.returncode == 130, got.stdout[-3000:] + got.stderr[-3000:]
    assert f"continue with: python studies/context_ablation.py --out {out} --resume" in got.stderr
    assert "Traceback" not in got.stderr and "no tuning trial trained" not in got.stderr
    assert not (out / "study_summary.json").exists()
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert json.loads((out / "study_summary.json").read_text())["complete"]


def test_a_read_only_study_folder_fails_before_ray(read_only_disk: Path, tiny_study, capsys) -> None:
    out = read_only_disk / "study"
    assert _cli().main(["--preset", "footage", "--out", str(out), "--allow-underpowered", *_sets(tiny_study)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"context_ablation.py: error: --out {out}: cannot write in {read_only_disk} (Read-only file system)"


def test_a_disk_error_of_tune_names_its_file() -> None:
    cli = _cli()
    failure = cli._disk_failure(OSError(errno.ENOSPC, "No space left on device", "/s/trials/x/result.json"), Path("/s"))
    assert str(failure) == "cannot write result.json in /s/trials/x: the disk is full (No space left on device)"
    assert "trials" in str(cli._disk_failure(OSError(errno.EROFS, "Read-only file system"), Path("/s")))
    assert cli._disk_failure(OSError(errno.ENOENT, "No such file"), Path("/s")) is None


def test_resume_of_a_truncated_study_yaml_is_refused_not_planned_with_defaults(tmp_path: Path, tiny_study,
                                                                                 capsys) -> None:
    """Issue 26 item 7: a study.yaml cut before `search:` still parses; its missing sections must not
    come back as defaults (4 tuning trials, 3 seeds, the default space)."""
    paths = StudyPaths(tmp_path / "study")
    prepare_folder(paths, load_study_config("footage", [*tiny_study, "confirm.seeds=1"]), resume=False)
    text = paths.study_yaml.read_text()
    paths.study_yaml.write_text(text[:text.index("\nsearch:") + 1])
    assert _cli().main(["--out", str(paths.root), "--resume", "--allow-underpowered"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(paths.study_yaml) in err[0] and "search" in err[0] and "missing" in err[0], err
