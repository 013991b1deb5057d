"""`python -m lift.train` configuration: --dry_run output and every config error path (exit 2, one line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lift.config import config_from_dict, load_config
from lift.train import main

REPO = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_without_dataset_is_the_smoke_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--dry_run")
    assert code == 0, err
    resolved = config_from_dict(yaml.safe_load(out))
    assert resolved == load_config("smoke")


def test_seed_flags_set_and_config_compose_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--dry_run", "--dataset", "vimeo", "--batch_size", "8", "--epochs", "100",
                          "--max_sequences", "10000", "--data_root", "/data/vimeo", "--window", "7",
                          "--temporal_offset", "1", "--lr", "1e-3", "--seed", "3", "--amp", "off",
                          "--device", "cpu", "--num_workers", "2", "--set", "optim.lr=3e-4",
                          "--set", "train.amp=bf16")
    assert code == 0, err
    cfg = config_from_dict(yaml.safe_load(out))
    assert (cfg.data.dataset, cfg.data.data_root, cfg.data.window, cfg.data.max_sequences) == (
        "vimeo", "/data/vimeo", 7, 10000)
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.seed, cfg.train.device) == (8, 100, 3, "cpu")
    assert cfg.data.num_workers == 2
    # --set comes after the flags: it wins
    assert cfg.optim.lr == 3e-4 and cfg.train.amp == "bf16"
    # a named dataset starts from the code defaults, not the toy preset
    assert cfg.model.width == 1.0


def test_config_preset_by_name_and_off_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--dry_run", "--config", "ucf101", "--set", "train.amp=off",
                        "--set", "logging.tensorboard=off")
    assert code == 0
    cfg = config_from_dict(yaml.safe_load(out))
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
