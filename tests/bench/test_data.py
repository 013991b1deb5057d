"""`python -m lift.bench data`: records in the shared format, with cold/warm loader and decode figures."""

from __future__ import annotations

import argparse

from lift.bench import data as bench_data


def test_bench_data_records() -> None:
    args = bench_data.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--quick", "--windows", "3", "--workers", "0", "--samples", "8", "--no_train_step"])
    records = bench_data.run(args)
    stages = [r["stage"] for r in records]
    assert stages == ["pyav-decode", "loader-cold", "loader-warm"]
    decode, cold, warm = records
    assert decode["fps"] > 0 and decode["frames"] == 120
    for rec in (cold, warm):
        assert rec["bench"] == "data" and rec["device"].startswith("cpu")
        assert rec["window"] == 3 and rec["temporal_offset"] == 1 and rec["resolution"] == [64, 64]
        assert rec["workers"] == 0 and rec["batch"] == 8
        assert rec["samples_per_s"] > 0 and rec["mb_per_s"] > 0
    # 8 samples of 3 float32 frames of 3x64x64 per second
    assert abs(warm["mb_per_s"] - warm["samples_per_s"] * 3 * 3 * 64 * 64 * 4 / 1e6) < 1e-6 * warm["mb_per_s"] + 1e-9
