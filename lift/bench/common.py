"""Shared helpers of the benchmarks: device description, timing, table printing, JSON output."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

import torch

from lift import devices


def resolve_device(name: str = "auto") -> torch.device:
    return devices.resolve_device(name, "--device")


def describe_device(device: torch.device) -> str:
    """A human-readable device name for benchmark records (the card, or the CPU and its threads)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device, warmup: int = 1, repeats: int = 3) -> float:
    """Median wall time of `fn` in seconds, after warm-up, with device synchronisation."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def peak_memory_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def format_table(records: list[dict[str, Any]]) -> str:
    """Fixed-width table of records; columns in first-seen order."""
    if not records:
        return "(no records)"
    columns: list[str] = []
    for rec in records:
        for key in rec:
            if key not in columns:
                columns.append(key)

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, (list, tuple)):
            return "x".join(str(x) for x in v)
        return str(v)

    rows = [[cell(rec.get(c)) for c in columns] for rec in records]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)
