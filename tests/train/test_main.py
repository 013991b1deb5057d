"""`python -m lift.train` (lift/train/__main__.py) configuration: --dry_run output and every config error path
(exit 2, one line), and Ctrl-C (exit 130)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lift.config import config_from_dict, load_config
from lift.train.__main__ import build_parser, main, resolve_cli_config

REPO = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _resolve(*argv: str):
    """The config the command line resolves to (--dry_run also checks the data, which these
    composition tests do not have)."""
    return resolve_cli_config(build_parser().parse_args(list(argv)))


def test_dry_run_without_dataset_is_the_smoke_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--dry_run")
    assert code == 0, err
    resolved = config_from_dict(yaml.safe_load(out))
    assert resolved == load_config("smoke")


def test_seed_flags_set_and_config_compose_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _resolve("--dataset", "vimeo", "--batch_size", "8", "--epochs", "100",
                   "--max_sequences", "10000", "--data_root", "/data/vimeo", "--window", "7",
                   "--temporal_offset", "1", "--lr", "1e-3", "--seed", "3", "--amp", "off",
                   "--device", "cpu", "--num_workers", "2", "--set", "optim.lr=3e-4",
                   "--set", "train.amp=bf16")
    assert (cfg.data.dataset, cfg.data.data_root, cfg.data.window, cfg.data.max_sequences) == (
        "vimeo", "/data/vimeo", 7, 10000)
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.seed, cfg.train.device) == (8, 100, 3, "cpu")
    assert cfg.data.num_workers == 2
    # --set comes after the flags: it wins
    assert cfg.optim.lr == 3e-4 and cfg.train.amp == "bf16"
    # a named dataset starts from the code defaults, not the toy preset
    assert cfg.model.width == 1.0


def test_config_preset_by_name_and_off_values(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _resolve("--config", "ucf101", "--set", "train.amp=off", "--set", "logging.tensorboard=off")
    assert cfg.data.dataset == "ucf101" and cfg.train.amp == "off" and cfg.logging.tensorboard is False


@pytest.mark.parametrize(("argv", "needle"), [
    (["--set", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
    (["--set", "nosuch.key=1"], "unknown config key 'nosuch'"),
    (["--set", "train.batch_size=abc"], "train.batch_size: got 'abc'"),
    (["--batch_size", "0"], "train.batch_size: got 0"),
    (["--window", "4"], "data.window: got 4"),
    (["--amp", "fp8"], "train.amp: got 'fp8'"),
    (["--device", "tpu"], "train.device: got 'tpu'"),
    (["--set", "optim.lr=-1"], "optim.lr: got -1"),
    (["--set", "optim.lr=inf"], "optim.lr: got 'inf'; expected a finite number"),
    (["--set", "loss.census=.inf"], "loss.census: got inf; expected a finite number"),
    (["--set", "loss.lpips=nan"], "loss.lpips: got 'nan'; expected a finite number"),
    (["--set", "optim.lr=5"], "optim.lr: got 5.0; expected a learning rate in (0, 1]"),
    (["--set", "optim.betas=[0.9,inf]"], "optim.betas[1]: got 'inf'; expected a finite number"),
    (["--resume", "--run_dir", "r", "--config", "smoke"], "drop --config smoke"),
    (["--resume", "--overwrite", "--run_dir", "r"], "--resume and --overwrite exclude each other"),
    (["--window", "15", "--temporal_offset", "4"], "needs 51 consecutive frames, but only 24 are available"),
    (["--run_dir", "/proc/lift_run"], "--run_dir /proc/lift_run: cannot write in /proc"),
    (["--run_dir", "/sys/lift_run"], "--run_dir /sys/lift_run: cannot write in /sys"),
    (["--set", "data.crop_size=[64]"], "data.crop_size: got [64]"),
    (["--config", "no_such_preset"], "'no_such_preset' is neither a file nor a preset"),
    (["--set", "optim.lr"], "override 'optim.lr': expected KEY=VALUE"),
    (["--set", "=3"], "the key before '=' is empty"),
    (["--dataset", "no_such_dataset"], "data.dataset: got 'no_such_dataset'"),
    (["--resume"], "--resume: needs --run_dir"),
    (["--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    (["--batch_size"], "argument --batch_size: expected one argument"),
])
def test_config_errors_exit_2_with_one_line_naming_the_field(capsys: pytest.CaptureFixture[str],
                                                              argv: list[str], needle: str) -> None:
    code, out, err = _run(capsys, "--dry_run", *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_run_dir_that_cannot_be_a_folder_is_refused_before_any_work(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = _run(capsys, "--run_dir", str(afile), "--epochs", "1")
    assert code == 2 and f"--run_dir {afile}: is a file" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "--run_dir", str(afile / "run"), "--epochs", "1")
    assert code == 2 and f"{afile} is a file, so no folder can be made under it" in err
    assert afile.read_text() == "x"


def _fake_run(run: Path) -> dict[str, bytes]:
    """A run folder as lift.train leaves it (contents only need to exist for the refusal)."""
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(load_config("smoke").to_dict()))
    (run / "checkpoints" / "best.pt").write_bytes(b"weights")
    return {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_fresh_run_into_an_existing_run_folder_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    before = _fake_run(run)
    for extra in ([], ["--dry_run"]):
        code, _, err = _run(capsys, "--run_dir", str(run), "--epochs", "1", *extra)
        assert code == 2 and "a run already lives there" in err and "--resume" in err and "--overwrite" in err
    assert {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = _run(capsys, "--run_dir", str(other), "--overwrite", "--epochs", "1")
    assert code == 2 and "holds other files" in err and (other / "notes.txt").read_text() == "mine"


def test_resume_keeps_the_saved_config_and_names_changed_keys(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    saved = load_config("smoke", ["optim.lr=1e-3", "loss.census=0.5", f"paths.run_dir={run}"])
    (run / "config.yaml").write_text(yaml.safe_dump(saved.to_dict()))
    cfg = _resolve("--resume", "--run_dir", str(run), "--epochs", "5")
    assert cfg.optim.lr == 1e-3 and cfg.loss.census == 0.5 and cfg.train.epochs == 5
    code, out, err = _run(capsys, "--resume", "--run_dir", str(run), "--epochs", "5", "--dry_run")
    assert code == 0, err
    assert "keeping the saved config" in err and "train.epochs: 2 -> 5" in err and "optim.lr" not in err
    assert config_from_dict(yaml.safe_load(out)).optim.lr == 1e-3


def test_bad_config_file_names_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    code, _, err = _run(capsys, "--dry_run", "--config", str(bad))
    assert code == 2 and "bad.yaml" in err and "epochz" in err


def test_resume_without_a_checkpoint_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "--resume", "--run_dir", str(tmp_path / "run"))
    assert code == 2 and "no checkpoint at" in err and "last.pt" in err


def test_module_entry_point_runs_as_a_program(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lift.train", "--dry_run", "--set", "train.epochs=oops"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "python -m lift.train: error: train.epochs: got 'oops'; expected an integer"


# ---- Ctrl-C: exit 130, and a --resume suggested only when there is something to resume ------------

def _train_cmd(run: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "lift.train", "--run_dir", str(run), "--device", "cpu", "--amp", "off",
            "--dataset", "synthetic", "--epochs", "2", "--set", "data.crop_size=[32,32]",
            "--set", "data.frame_size=[32,48]", "--set", "data.max_sequences=2", "--set", "model.block_depth=1",
            "--set", f"train.max_steps_per_epoch={steps}", "--set", "data.train_samples_per_epoch=null",
            "--set", "train.batch_size=2", "--set", "data.eval_targets_per_video=1",
            "--set", "logging.progress=off", "--set", "eval.lpips=false"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_ctrl_c_after_a_checkpoint_suggests_a_resume_that_works(tmp_path: Path, sigint_at) -> None:
    run = tmp_path / "run"
    cmd = _train_cmd(run, steps=4)
    got = sigint_at(cmd, lambda out: "epoch 1 step" in out, env=_env())
    assert got.signalled, got.stderr[-2000:]
    assert got.returncode == 130 and "Traceback" not in got.stderr, got.stderr[-2000:]
    assert f"python -m lift.train --resume --run_dir {run}" in got.stderr
    resumed = subprocess.run([sys.executable, "-m", "lift.train", "--resume", "--run_dir", str(run)], env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "done: 2 epochs" in resumed.stdout, resumed.stderr[-2000:]


def test_ctrl_c_before_the_first_checkpoint_says_start_again(tmp_path: Path, sigint_at) -> None:
    run = tmp_path / "run"
    cmd = _train_cmd(run, steps=100_000)  # epoch 1 cannot end before the signal
    got = sigint_at(cmd, lambda out: (run / "config.yaml").is_file(), env=_env())
    assert got.signalled, got.stderr[-2000:]
    assert got.returncode == 130 and "Traceback" not in got.stderr, got.stderr[-2000:]
    assert "--resume" not in got.stderr and "nothing to resume" in got.stderr
    assert f"python -m lift.train --run_dir {run}" in got.stderr  # the same command, to start again
    assert not run.exists()  # no half run that a fresh start would refuse


def test_a_full_disk_is_one_line_naming_the_folder(small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = small_disk / "run"
    code, _, err = _run(capsys, *_train_cmd(run, steps=2)[3:], "--set", "model.width=1.0")
    assert code == 2, err
    first, advice = err.strip().splitlines()[-3:-1]
    assert first.startswith("python -m lift.train: error: cannot write last.pt in ") and "the disk is full" in first
    assert "nothing to resume" in advice and "--resume" not in err and "Traceback" not in err
    assert not run.exists()  # the same command can start again once there is space
