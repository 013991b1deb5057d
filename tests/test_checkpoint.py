"""lift.checkpoint: safe loading, atomic writes that survive a crash mid-save, the model it holds."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

import lift.checkpoint as checkpoint
from lift.atomic import OutputWriteError
from lift.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, atomic_copy, load_checkpoint, model_from_checkpoint,
                             save_checkpoint)
from lift.config import Config, ModelConfig
from lift.model import build_model, model_args
from lift.rng import capture_rng_state


def _state(value: float) -> dict:
    return {"format": CHECKPOINT_FORMAT, "model": {"w": torch.full((64, 64), value)}, "epoch": 1, "step": 7,
            "rng": capture_rng_state(), "config": {"name": "x", "train": {"lr": [1, 2]}}}


def test_round_trip_loads_with_weights_only(tmp_path: Path) -> None:
    path = save_checkpoint(_state(1.5), tmp_path / "ck" / "last.pt")
    # the loader is torch.load(weights_only=True): RNG states must be tensors and plain containers
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 7 and torch.equal(raw["model"]["w"], torch.full((64, 64), 1.5))
    assert load_checkpoint(path)["config"] == {"name": "x", "train": {"lr": [1, 2]}}
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary files left


def test_interrupted_write_leaves_the_previous_checkpoint_loadable(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_state(1.0), path)
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):  # a kill in the middle of serialising
        real_save(obj, f, *args, **kwargs)
        f.seek(0)
        data = f.read() if f.readable() else b""
        f.seek(0)
        f.truncate(max(1, len(data) // 3) if data else 100)
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(checkpoint.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_state(2.0), path)
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.full((64, 64), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_truncated_file_is_reported_by_name(tmp_path: Path) -> None:
    path = save_checkpoint(_state(1.0), tmp_path / "c.pt")
    data = path.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="expected format"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_best_copy_keeps_its_content_when_last_is_rewritten(tmp_path: Path) -> None:
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    save_checkpoint(_state(1.0), last)
    atomic_copy(last, best)
    save_checkpoint(_state(3.0), last)
    assert float(load_checkpoint(best)["model"]["w"][0, 0]) == 1.0
    assert float(load_checkpoint(last)["model"]["w"][0, 0]) == 3.0


class _Payload:
    """A pickle that runs a command when loaded without weights_only."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_unloadable_files_are_one_line_without_the_weights_only_false_hint(tmp_path: Path) -> None:
    good = save_checkpoint(_state(1.0), tmp_path / "good.pt").read_bytes()
    files = {"random.pt": np.random.default_rng(0).bytes(4096), "truncated.pt": good[: len(good) // 2],
             "empty.pt": b""}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"format": CHECKPOINT_FORMAT, "x": _Payload()}, tmp_path / "malicious.pt")
    for name in [*files, "malicious.pt"]:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        text = str(err.value)
        assert str(tmp_path / name) in text and "\n" not in text, text
        assert "weights_only" not in text and "False" not in text, text
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(tmp_path / "malicious.pt")
    with pytest.raises(CheckpointError, match="is a folder; expected a checkpoint file"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_without_its_config_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint({"format": CHECKPOINT_FORMAT, "model": {}}, tmp_path / "noconfig.pt")
    with pytest.raises(CheckpointError, match="its config is invalid: 'config' holds NoneType"):
        model_from_checkpoint(path)


def test_a_write_cleans_the_temporaries_a_killed_write_left(tmp_path: Path) -> None:
    stale = tmp_path / ".last.pt.k1ll3d.tmp"
    stale.write_bytes(b"x" * 1000)
    save_checkpoint(_state(2.0), tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def _model_checkpoint(tmp_path: Path, name: str, cfg: Config, **extra: object) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.window)
    state = {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": cfg.to_dict(), **extra}
    return save_checkpoint(state, tmp_path / name), model


def test_the_model_is_rebuilt_from_its_stored_arguments(tmp_path: Path) -> None:
    cfg = Config()
    cfg.model = ModelConfig(width=0.25, block_depth=2)
    cfg.data.window = 5
    args = model_args(cfg.model, cfg.data.window)
    assert args == {"window": 5, "width": 0.25, "block_scales": [4, 2, 1], "block_depth": 2,
                    "quadratic_extrapolation": False, "refine": True, "reference_matching": True, "backbone": "rife_m"}
    path, model = _model_checkpoint(tmp_path, "args.pt", cfg, model_args=args)
    # The stored arguments decide, not the config: a config that no longer describes the network
    # (here a wider model) still loads the network that was trained.
    stored = torch.load(path, weights_only=True)
    stored["config"]["model"]["width"] = 1.0
    torch.save(stored, path)
    loaded, loaded_cfg = model_from_checkpoint(path)
    assert loaded_cfg.model.width == 1.0 and loaded.width == 0.25 and loaded.window == 5
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_a_checkpoint_without_model_args_is_rebuilt_from_its_config(tmp_path: Path) -> None:
    cfg = Config()
    cfg.model = ModelConfig(width=0.25, block_depth=2)
    path, model = _model_checkpoint(tmp_path, "old.pt", cfg, scheduler={"last_epoch": 3})
    loaded, _ = model_from_checkpoint(path)
    assert loaded.width == 0.25 and loaded.window == cfg.data.window
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_bad_model_args_name_the_file(tmp_path: Path) -> None:
    cfg = Config()
    cfg.model = ModelConfig(width=0.25, block_depth=2)
    path, _ = _model_checkpoint(tmp_path, "badargs.pt", cfg, model_args={"window": 4})
    with pytest.raises(CheckpointError, match=r"badargs.pt: cannot build model 'lift': .*window: got 4"):
        model_from_checkpoint(path)


def test_checkpoints_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        save_checkpoint({"format": CHECKPOINT_FORMAT}, tmp_path / "last.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "last.pt").stat().st_mode) == 0o644


def test_a_full_disk_is_one_error_naming_the_folder_not_torchs_unexpected_pos(small_disk: Path) -> None:
    path = small_disk / "last.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "x": torch.zeros(4)}, path)
    with pytest.raises(OutputWriteError, match=rf"^cannot write last.pt in {small_disk}: the disk is full"):
        save_checkpoint({"format": CHECKPOINT_FORMAT, "x": torch.zeros(2**20)}, path)
    assert load_checkpoint(path)["x"].numel() == 4  # the previous checkpoint is intact
    assert [p.name for p in small_disk.iterdir()] == ["last.pt"]
