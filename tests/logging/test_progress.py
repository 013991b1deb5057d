"""Console progress: bar on a TTY, periodic lines with rate and ETA otherwise."""

from __future__ import annotations

import io
import time

from lift.logging.progress import Progress, format_duration


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_mode_prints_lines_with_rate_and_eta_when_not_a_tty() -> None:
    out = io.StringIO()
    with Progress(10, desc="epoch 1/2", interval_s=0.01, stream=out, unit="step") as p:
        assert p.mode == "lines"
        for _ in range(3):
            time.sleep(0.02)
            p.update(1, loss=0.123456)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) >= 3  # periodic lines plus the closing one
    assert lines[-1].startswith("epoch 1/2: 3/10 (30%)")
    assert "step/s" in lines[-1] and "eta " in lines[-1] and "loss=0.1235" in lines[-1]
    assert "\r" not in out.getvalue()


def test_lines_are_rate_limited() -> None:
    out = io.StringIO()
    with Progress(1000, desc="x", interval_s=3600, stream=out) as p:
        for _ in range(100):
            p.update()
    assert len(out.getvalue().strip().splitlines()) == 1  # only the closing line


def test_auto_mode_draws_a_bar_on_a_tty_and_off_prints_nothing() -> None:
    tty = _Tty()
    with Progress(5, desc="bar", stream=tty) as p:
        assert p.mode == "bar"
        p.update(5)
    assert "\r" in tty.getvalue() and "bar:" in tty.getvalue() and "/5" in tty.getvalue()
    quiet = io.StringIO()
    with Progress(5, mode="off", stream=quiet) as p:
        p.update(5)
    assert quiet.getvalue() == ""


def test_eta_and_duration_format() -> None:
    p = Progress(100, mode="off")
    p.start -= 10.0
    p.n = 25
    assert abs(p.eta_s() - 30.0) < 1.0
    assert format_duration(3725) == "1:02:05" and format_duration(65) == "1:05"
    assert format_duration(float("nan")) == "?"
