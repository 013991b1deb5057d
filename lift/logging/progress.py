"""Console progress: a tqdm bar on a terminal, periodic plain lines with rate and ETA otherwise.

Logs of batch jobs (CI, Ray workers, nohup) should not fill with carriage-return bar redraws, yet a
long epoch must still say it is alive; `mode="auto"` picks the bar only when the stream is a TTY.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """Progress over `total` units (None: unknown). Use as a context manager.

    mode: "bar" (tqdm), "lines" (a line every `interval_s` seconds and one at the end), "off",
    or "auto" (bar when `stream` is a TTY, else lines).
    """

    def __init__(self, total: int | None, desc: str = "", mode: str = "auto", interval_s: float = 30.0,
                 stream: TextIO | None = None, unit: str = "it") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"progress mode: got {mode!r}; allowed values are auto, bar, lines, off")
        self.mode = mode
        self.total = total
        self.desc = desc
        self.unit = unit
        self.interval_s = interval_s
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.start = time.monotonic()
        self._last_line = self.start
        self._bar = (tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=False)
                     if mode == "bar" else None)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.n / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float:
        rate = self.rate()
        if self.total is None or rate <= 0:
            return float("nan")
        return max(self.total - self.n, 0) / rate

    def line(self) -> str:
        done = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        elapsed = time.monotonic() - self.start
        parts = [f"{self.desc}: {done}{pct}", f"{self.rate():.2f} {self.unit}/s",
                 f"elapsed {format_duration(elapsed)}", f"eta {format_duration(self.eta_s())}"]
        parts += [f"{k}={_fmt(v)}" for k, v in self.postfix.items()]
        return ", ".join(parts)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.n += n
        if postfix:
            self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: _fmt(v) for k, v in self.postfix.items()}, refresh=False)
            self._bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last_line >= self.interval_s:
                self._last_line = now
                print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines" and self.n:
            print(self.line(), file=self.stream, flush=True)
        self.mode = "off" if self.mode == "lines" else self.mode

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
