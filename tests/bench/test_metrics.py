"""`python -m lift.bench metrics --quick` on the CPU: one record per metric, real throughput figures."""

from __future__ import annotations

import argparse

from lift.bench import metrics as bench_metrics


def test_quick_run_on_the_cpu_times_every_metric():
    parser = bench_metrics.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--quick", "--device", "cpu", "--resolution", "48", "64"])
    records = bench_metrics.run(args)
    by_metric = {r["metric"]: r for r in records}
    assert list(by_metric) == ["psnr", "ssim", "ssim_rife", "lpips", "epe", "tvl1"]
    for rec in records:
        assert rec["bench"] == "metrics" and rec["device"].startswith("cpu (")
        assert rec["resolution"] == [48, 64] and rec["peak_mem_mb"] is None
    for metric in ("psnr", "ssim", "ssim_rife", "epe"):
        assert by_metric[metric]["batch"] == 2 and by_metric[metric]["samples_per_s"] > 0
    assert by_metric["tvl1"]["batch"] == 1 and by_metric["tvl1"]["samples_per_s"] > 0
    # LPIPS is timed when its weights load; otherwise the record says why instead of a figure.
    lpips = by_metric["lpips"]
    assert lpips["samples_per_s"] > 0 or (lpips["samples_per_s"] is None and lpips["note"])


def test_real_pair_is_two_different_frames_cropped_or_tiled_to_the_resolution():
    first, second = bench_metrics._real_pair(300, 500)  # larger than the clip: tiled, then center-cropped
    assert first.shape == second.shape == (3, 300, 500)
    assert 0.0 <= float(first.min()) and float(first.max()) <= 1.0
    assert float((first - second).abs().mean()) > 0  # consecutive frames of real footage differ
