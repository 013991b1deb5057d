"""`python -m lift.bench train`: records in the bench format of ARCHITECTURE.md."""

from __future__ import annotations

import argparse

from lift.bench import train as bench_train


def test_bench_train_record_on_cpu() -> None:
    args = bench_train.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--quick", "--device", "cpu", "--windows", "3", "--steps", "2", "--warmup", "1"])
    (rec,) = bench_train.run(args)
    assert rec["bench"] == "train" and rec["device"].startswith("cpu")
    assert (rec["window"], rec["resolution"], rec["batch"], rec["steps"]) == (3, [64, 64], 4, 2)
    assert rec["samples_per_s"] > 0 and rec["train_step_s"] > 0
    assert 0 <= rec["data_wait_fraction"] < 1
    assert rec["peak_mem_mb"] is None and rec["peak_rss_mb"] > 0  # CPU: process RSS instead of CUDA peak
    assert rec["params"] > 0


def test_gpu_preset_sizes() -> None:
    args = bench_train.add_arguments(argparse.ArgumentParser()).parse_args([])
    cfg = bench_train.bench_config(15, gpu=True, args=args)
    assert (cfg.data.crop_size, cfg.model.width, cfg.train.batch_size, cfg.train.amp) == ([256, 256], 1.0, 16, "bf16")
    assert cfg.data.window == 15
