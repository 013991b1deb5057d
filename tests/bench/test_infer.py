"""`python -m lift.bench infer`: records in the shared format, on tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lift.bench import infer
from lift.bench.__main__ import main as bench_main
from lift.config import ModelConfig
from lift.model import build_model


def test_infer_records_cover_every_window_and_size(capsys: pytest.CaptureFixture) -> None:
    parser = infer.add_arguments(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--device", "cpu", "--windows", "3", "7", "--resolutions", "32x48", "40x40",
                              "--width", "0.125", "--repeats", "1", "--no_pipeline"])
    records = infer.run(args)
    assert [(r["window"], r["resolution"]) for r in records] == [
        (3, [32, 48]), (7, [32, 48]), (3, [40, 40]), (7, [40, 40])]
    for rec in records:
        assert rec["bench"] == "infer" and rec["device"].startswith("cpu")
        assert rec["mode"] == "eager" and rec["amp"] == "off" and rec["batch"] == 1
        assert rec["forward_s"] > 0 and rec["fps"] == pytest.approx(1 / rec["forward_s"])
        assert rec["peak_mem_mb"] is None  # CPU: no allocator statistics
    # Sizes are padded up to the network's size multiple, as lift.interpolate does.
    for rec in records:
        m = build_model(ModelConfig(width=0.125), rec["window"]).size_multiple
        assert rec["padded"] == [-(-v // m) * m for v in rec["resolution"]]
    assert records[2]["padded"] != records[2]["resolution"]
    assert "window 7 / window 3 time at 32x48 (eager)" in capsys.readouterr().out


def test_infer_cli_writes_json_with_a_pipeline_record(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    rc = bench_main(["infer", "--device", "cpu", "--windows", "3", "--resolutions", "32x32", "--width", "0.125",
                     "--repeats", "1", "--quick", "--json", str(out)])
    assert rc == 0
    records = json.loads(out.read_text())
    kinds = [r["kind"] for r in records]
    assert kinds == ["forward", "pipeline"]
    pipe = records[1]
    # Six frames of the bundled carphone clip, doubled: 12 frames, every pair with window 3.
    assert pipe["clip"] == "carphone_pristine.mp4" and pipe["input_frames"] == 6 and pipe["output_frames"] == 12
    assert pipe["windows_used"] == {"3": 5} and pipe["fps"] > 0


def test_dispatcher_reports_a_benchmark_that_cannot_be_imported(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    import lift.bench.__main__ as dispatcher

    monkeypatch.setattr(dispatcher, "SUBCOMMANDS", ("no_such_bench",))
    assert bench_main(["no_such_bench"]) == 2
    assert "cannot be imported" in capsys.readouterr().err
    # `all` runs what it can, names what it could not, and fails at the end.
    assert bench_main(["all", "--quick"]) == 1
    captured = capsys.readouterr()
    assert "skipped: lift.bench.no_such_bench cannot be imported" in captured.out
    assert "failed: no_such_bench" in captured.err
