"""`python -m lift.bench model`: cost records and the two printed target checks, at tiny sizes."""

from __future__ import annotations

import json

from lift.bench import model as bench_model
from lift.atomic import write_json


def test_bench_model_records_and_checks(tmp_path, capsys):
    parser = bench_model.add_arguments(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--quick", "--device", "cpu", "--resolution", "64", "96", "--width", "0.5",
                              "--smoke_resolution", "32", "32", "--batch", "1", "--repeats", "1", "--windows", "3", "7", "15"])
    records = bench_model.run(args)
    out = capsys.readouterr().out
    assert "window 15 train step / window 3 train step = " in out and "(target <= 2.5)" in out
    assert "param difference = reference path only: OK" in out

    cost = {r["window"]: r for r in records if r["kind"] == "cost"}
    timing = {r["window"]: r for r in records if r["kind"] == "time"}
    assert set(cost) == set(timing) == {3, 7, 15}
    assert cost[3]["reference_params"] == 0
    assert cost[7]["params"] == cost[15]["params"] == cost[3]["params"] + cost[15]["reference_params"]
    assert cost[3]["macs"] < cost[7]["macs"] < cost[15]["macs"]
    assert cost[3]["resolution"] == [64, 96] and cost[3]["width"] == 0.5
    for rec in timing.values():
        assert rec["bench"] == "model" and rec["device"].startswith("cpu")
        assert rec["resolution"] == [32, 32] and rec["batch"] == 1
        assert rec["forward_s"] > 0 and rec["train_step_s"] > 0 and rec["samples_per_s"] > 0
    path = tmp_path / "bench.json"
    write_json(path, records)
    assert json.loads(path.read_text())[0]["bench"] == "model"


def test_mac_count_scales_with_resolution():
    small = bench_model.count_cost(3, bench_model.ModelConfig(width=0.25), 32, 32)
    large = bench_model.count_cost(3, bench_model.ModelConfig(width=0.25), 64, 64)
    # Every layer is convolutional: MACs grow with the pixel count, parameters do not.
    assert large["macs"] == 4 * small["macs"]
    assert large["params"] == small["params"]


def test_param_check_reports_a_difference():
    costs = {3: {"params": 10, "reference_params": 0}, 7: {"params": 15, "reference_params": 5},
             15: {"params": 16, "reference_params": 6}}
    assert "FAILED" in bench_model.param_check(costs)
