"""lift.bench.common: the median timer, the device description and the fixed-width record table."""

from __future__ import annotations

import time

import pytest
import torch

from lift.bench.common import describe_device, format_table, peak_memory_mb, resolve_device, time_call
from lift.config import ConfigError


def test_format_table_aligns_columns_in_first_seen_order_and_formats_cells():
    records = [{"metric": "psnr", "resolution": [256, 128], "samples_per_s": 1234.5678},
               {"metric": "lpips", "samples_per_s": None, "note": "weights missing"}]
    lines = format_table(records).splitlines()
    assert lines[0].split() == ["metric", "resolution", "samples_per_s", "note"]
    assert set(lines[1].replace("  ", "")) == {"-"}
    assert lines[2].split() == ["psnr", "256x128", "1235", "-"]  # floats to 4 significant digits, None as '-'
    assert lines[3].split() == ["lpips", "-", "-", "weights", "missing"]
    # Columns are padded to the widest cell, so every column starts at the same offset on every line.
    start = lines[0].index("samples_per_s")
    assert lines[2][start:].startswith("1235") and lines[3][start:].startswith("-")
    assert format_table([]) == "(no records)"


def test_time_call_warms_up_and_returns_the_median_of_the_repeats():
    calls = []
    durations = iter([0.0, 0.2, 0.001, 0.02])  # warm-up, then three timed calls

    def fn() -> None:
        calls.append(1)
        time.sleep(next(durations))

    seconds = time_call(fn, torch.device("cpu"), warmup=1, repeats=3)
    assert len(calls) == 4
    assert 0.02 <= seconds < 0.2  # the median (0.02 s), neither the fastest nor the slowest


def test_cpu_device_is_described_and_has_no_peak_memory():
    cpu = resolve_device("cpu")
    assert cpu == torch.device("cpu")
    assert describe_device(cpu).startswith("cpu (") and f"{torch.get_num_threads()} threads" in describe_device(cpu)
    assert peak_memory_mb(cpu) is None
    with pytest.raises(ConfigError, match="--device"):
        resolve_device("tpu")
