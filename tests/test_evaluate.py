import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader, Dataset

from lift.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from lift.config import ConfigError, EvalConfig, load_config
from lift.data.loading import collate_by_size
from lift.model import build_model
from lift.data.window import sample_id
from lift.window import WindowSpec
from lift.metrics.image import psnr
from lift.model import pretrained
from lift.evaluate import (
    REQUIRED_COLUMNS,
    available_baselines,
    evaluate_baselines,
    evaluate_model,
    main,
    read_samples_table,
    repeat_baseline,
    summarize,
    write_samples_table,
)


@pytest.fixture(scope="module")
def clip(request) -> torch.Tensor:
    """12 real frames (carphone, 176x144) cropped to 72x88: small and not a multiple of 32."""
    return request.getfixturevalue("first_frames")(request.getfixturevalue("carphone_clip"), 12)[..., 20:92, 30:118].contiguous()


class Windows(Dataset):
    """Window samples of the dataset contract over an in-memory frame sequence."""

    name = "testclip"

    def __init__(self, frames: torch.Tensor, window: int = 5, offset: int = 1, gap: int = 2, a: int | None = None,
                 with_flow: bool = False) -> None:
        self.frames, self.spec, self.a, self.with_flow = frames, WindowSpec(window, offset, gap), a, with_flow
        self.targets = list(self.spec.valid_targets(len(frames), a))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict:
        t = self.targets[i]
        offsets = self.spec.input_offsets(self.a)
        frames = self.frames[[t + o for o in offsets]]
        item = {"frames": frames, "times": torch.tensor(self.spec.input_times(self.a)),
                "target": self.frames[t], "timestep": torch.tensor(self.spec.timestep(self.a)),
                "sample_id": sample_id(self.name, "carphone", t), "video_id": "carphone", "cluster_id": "carphone",
                "target_index": t}
        if self.with_flow:
            n, _, h, w = frames.shape
            item["flow_gt"] = torch.zeros(n, 2, h, w)
            item["valid"] = torch.ones(n, 1, h, w)
        return item


class BlendNet(torch.nn.Module):
    """A fixed 'model' honouring the LIFT interface: predicts the anchors' mean, reports a constant
    flow of (flow_px, 0) to every input, and demands frame sizes that are multiples of 32."""

    size_multiple = 32

    def __init__(self, window: int, flow_px: float = 0.0) -> None:
        super().__init__()
        self.window, self.flow_px = window, flow_px
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, frames, times, timestep, target=None):
        b, n, c, h, w = frames.shape
        assert h % 32 == 0 and w % 32 == 0, (h, w)
        assert times.shape == (b, n) and timestep.shape == (b,)
        pred = self.scale * 0.5 * (frames[:, 0] + frames[:, 1])
        flows = torch.zeros(b, n, 2, h, w)
        flows[:, :, 0] = self.flow_px
        return pred, {"flows": flows}


NO_LPIPS = EvalConfig(lpips=False)


def test_repeat_shows_the_nearest_anchor_and_the_left_one_on_ties():
    frames = torch.stack([torch.zeros(4, 3, 2, 2), torch.ones(4, 3, 2, 2)], dim=1)  # left 0, right 1
    pred = repeat_baseline(frames, torch.tensor([0.25, 0.5, 0.75, 0.5001]))
    assert pred[:, 0, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_baselines_are_exact_on_identical_frames_and_infinity_is_handled(clip, tmp_path):
    still = clip[4:5].expand(9, -1, -1, -1).contiguous()
    loader = DataLoader(Windows(still, window=5), batch_size=2)
    df = evaluate_baselines(loader, eval_cfg=EvalConfig(), split="test", seed=3, progress=False)
    assert set(df["arm"]) == {"baseline=repeat", "baseline=blend"}
    assert np.isposinf(df["psnr"]).all()
    assert np.allclose(df["ssim"], 1.0, atol=1e-6)
    assert (df["lpips"] == 0).all()

    path = write_samples_table(df, tmp_path)
    back = read_samples_table(tmp_path)
    assert path == tmp_path / "samples.parquet" and np.isposinf(back["psnr"]).all()
    pd.testing.assert_frame_equal(back, df)

    summary = summarize(df).set_index(["arm", "metric"])
    psnr_row = summary.loc[("baseline=repeat", "psnr")]
    assert psnr_row["n"] == 0 and psnr_row["n_inf"] == len(df) // 2 and math.isinf(psnr_row["mean"])
    assert summary.loc[("baseline=blend", "ssim"), "mean"] == pytest.approx(1.0, abs=1e-6)
    assert summary.loc[("baseline=blend", "lpips"), "mean"] == 0.0


def test_summarize_averages_finite_values_and_counts_infinite_ones():
    rng = np.random.default_rng(0)
    finite = rng.normal(30, 2, size=20)
    df = pd.DataFrame({"arm": ["a"] * 23, "psnr": np.concatenate([finite, [np.inf] * 3]),
                       "ssim": rng.uniform(0.8, 1.0, size=23)})
    row = summarize(df).set_index("metric").loc["psnr"]
    assert row["n"] == 20 and row["n_inf"] == 3
    assert row["mean"] == pytest.approx(finite.mean())
    lo, hi = stats.t.interval(0.95, 19, loc=finite.mean(), scale=stats.sem(finite))
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert summarize(df).set_index("metric").loc["ssim", "n_inf"] == 0


def test_model_and_baseline_tables_share_ids_columns_and_code(clip):
    data = Windows(clip, window=5, with_flow=True)
    loader = DataLoader(data, batch_size=3)
    net = BlendNet(window=5, flow_px=2.0).train()
    kw = dict(device="cpu", eval_cfg=NO_LPIPS, arm="window=5,offset=1", split="val", seed=7, trial_id="t0", progress=False)
    df = evaluate_model(net, loader, **kw)
    assert net.training  # the caller's mode is restored
    base = evaluate_baselines(loader, eval_cfg=NO_LPIPS, split="val", progress=False)

    for table in (df, base):
        assert set(REQUIRED_COLUMNS) <= set(table.columns)
        assert table["lpips"].isna().all()  # disabled in this config, and said so by NaN
    assert list(df.columns[:8]) == ["sample_id", "video_id", "cluster_id", "target_index", "timestep", "psnr", "ssim",
                                    "lpips"]
    assert {"epe", "epe_gt1", "epe_gt3", "warp_error", "window", "temporal_offset"} <= set(df.columns)
    expected_ids = [sample_id("testclip", "carphone", t) for t in data.targets]
    assert df["sample_id"].tolist() == expected_ids
    for arm, group in base.groupby("arm"):
        assert group["sample_id"].tolist() == expected_ids, arm
    assert (df["arm"] == "window=5,offset=1").all() and (df["seed"] == 7).all() and (df["trial_id"] == "t0").all()
    assert df["target_index"].tolist() == data.targets and (df["timestep"] == 0.5).all()

    # Padding to 96x96 and cropping back leaves exactly the blend baseline's numbers.
    blend = base[base["arm"] == "baseline=blend"].reset_index(drop=True)
    assert np.allclose(df["psnr"], blend["psnr"], rtol=0, atol=1e-9)
    assert np.allclose(df["ssim"], blend["ssim"], rtol=0, atol=1e-9)
    # A constant 2 px flow against a zero ground truth: EPE 2, all pixels above 1 px, none above 3.
    assert np.allclose(df["epe"], 2.0) and (df["epe_gt1"] == 1).all() and (df["epe_gt3"] == 0).all()
    assert (df["warp_error"] > 0).all()

    again = evaluate_model(net, loader, **kw)
    pd.testing.assert_frame_equal(df, again)


def test_predicted_frames_of_the_panel_samples_are_kept(clip, tmp_path):
    """The confirm stage keeps the frames of a fixed subset of sample ids for the report's frames panel."""
    import json

    from PIL import Image

    from lift.evaluate import FRAMES_INDEX, panel_sample_ids

    data = Windows(clip, window=5)
    data.sample_ids = [sample_id(data.name, "carphone", t) for t in data.targets]
    loader = DataLoader(data, batch_size=3)
    kw = dict(device="cpu", eval_cfg=NO_LPIPS, arm="window=5,offset=1", split="test", seed=7, trial_id="t0", progress=False)
    evaluate_model(BlendNet(window=5), loader, frames_dir=tmp_path / "frames", **kw)
    index = json.loads((tmp_path / "frames" / FRAMES_INDEX).read_text())
    wanted = panel_sample_ids(data.sample_ids, 4)
    assert wanted <= set(index) and len(index) == min(len(data.sample_ids), 12)
    assert panel_sample_ids(list(reversed(data.sample_ids)), 4) == wanted  # order-independent: same for every arm
    sid = sorted(index)[0]
    t = data.targets[data.sample_ids.index(sid)]
    target = np.asarray(Image.open(tmp_path / "frames" / index[sid]["target"]))
    assert target.shape == (clip.shape[2], clip.shape[3], 3)
    expected = (clip[t].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(target.astype(int) - expected.astype(int)).max() <= 1


def test_off_centre_timesteps_reach_the_table(clip):
    loader = DataLoader(Windows(clip, window=3, gap=4, a=1), batch_size=4)
    df = evaluate_baselines(loader, eval_cfg=NO_LPIPS, split="test", progress=False)
    assert (df["timestep"] == 0.25).all()
    repeat = df[df["arm"] == "baseline=repeat"]
    t = repeat["target_index"].tolist()
    # timestep 0.25 -> the left anchor, one frame before the target.
    expected = psnr(clip[[i - 1 for i in t]], clip[t]).numpy()
    assert np.allclose(repeat["psnr"], expected)


def test_tables_with_repeated_samples_or_missing_columns_are_refused(clip, tmp_path):
    df = evaluate_baselines(DataLoader(Windows(clip, window=3), batch_size=4), eval_cfg=NO_LPIPS,
                            split="test", baselines=("blend",), progress=False)
    with pytest.raises(ValueError, match="repeat a"):
        write_samples_table(pd.concat([df, df.iloc[:1]]), tmp_path)
    with pytest.raises(ValueError, match="missing columns.*'ssim'"):
        write_samples_table(df.drop(columns=["ssim"]), tmp_path)
    assert not list(tmp_path.iterdir())
    write_samples_table(df, tmp_path, csv=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.csv", "samples.parquet"]
    assert pd.read_csv(tmp_path / "samples.csv")["sample_id"].tolist() == df["sample_id"].tolist()


def test_collate_by_size_splits_mixed_frame_sizes(clip):
    small = Windows(clip[..., :64, :64], window=3)[0]
    large = Windows(clip, window=3)[0]
    batches = collate_by_size([small, large, small])
    assert [b["target"].shape[0] for b in batches] == [2, 1]
    df = evaluate_baselines([batches], eval_cfg=NO_LPIPS, split="test", progress=False)
    assert len(df) == 6


def _cli_args(tmp_path: Path) -> list[str]:
    return ["--set", "data.frame_size=[48,64]", "--set", f"data.cache_dir={tmp_path / 'cache'}",
            "--set", "data.eval_targets_per_video=2", "--set", "eval.lpips=false", "--max_batches", "2"]


def test_cli_baselines_on_the_embedded_clips(tmp_path, capsys):
    assert main(["--baselines", "--split", "test", "--csv", "--out", str(tmp_path / "out"), *_cli_args(tmp_path)]) == 0
    df = read_samples_table(tmp_path / "out")
    # The published model joins where its weights are fetched (make rife-weights does).
    expected = {"baseline=repeat", "baseline=blend"} | ({"baseline=rife_hd"} if pretrained.available() else set())
    assert set(df["arm"]) == expected and (df["split"] == "test").all()
    assert (tmp_path / "out" / "samples.csv").is_file()
    out = capsys.readouterr().out
    assert "baseline=blend" in out and "95% CI" in out


def test_cli_checkpoint(tmp_path, capsys):
    from lift.config import load_config
    from lift.model import build_model

    cfg = load_config(None, ["model.width=0.125", "model.refine=false", "model.block_depth=1"])
    model = build_model(cfg.model, cfg.data.window)
    ckpt = tmp_path / "run7" / "checkpoints" / "best.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "config": cfg.to_dict()}, ckpt)
    assert main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), *_cli_args(tmp_path)]) == 0
    df = read_samples_table(tmp_path / "out")
    assert (df["arm"] == "window=3").all() and (df["trial_id"] == "run7").all()
    assert df["psnr"].notna().all() and "warp_error" in df.columns
    with pytest.raises(ConfigError, match="window=3"):
        main(["--checkpoint", str(ckpt), "--window", "5", "--out", str(tmp_path / "o2"), *_cli_args(tmp_path)])


def test_cli_input_errors_are_one_line_with_exit_code_2(tmp_path, capsys) -> None:
    from lift.evaluate import cli

    assert cli(["--baselines", "--set", "data.windw=3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m lift.evaluate: error:") and "unknown config key 'data.windw'" in err
    assert "\n" not in err
    missing = tmp_path / "no_such_dataset"
    assert cli(["--baselines", "--dataset", "vimeo", "--data_root", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_cli_bad_checkpoints_are_one_line_with_exit_code_2(tmp_path, capsys) -> None:
    from lift.evaluate import cli

    good = save_checkpoint({"format": CHECKPOINT_FORMAT, "model": {}, "config": {}}, tmp_path / "g.pt").read_bytes()
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(1).bytes(2048))
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    torch.save({"format": CHECKPOINT_FORMAT, "x": _Payload()}, tmp_path / "malicious.pt")
    wrong = tmp_path / "wrong_arch.pt"
    cfg = load_config(None, ["model.width=0.125", "model.block_depth=1"])
    other = build_model(load_config(None, ["model.width=0.25", "model.block_depth=1"]).model, 3)
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": other.state_dict(), "config": cfg.to_dict()}, wrong)
    cases = {"random.pt": "cannot load checkpoint", "truncated.pt": "cannot load checkpoint",
             "foreign.pt": "not a LIFT training checkpoint", "malicious.pt": "could run code",
             "wrong_arch.pt": "does not match the architecture", "": "is a folder"}
    for name, needle in cases.items():
        path = tmp_path / name if name else tmp_path
        assert cli(["--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and str(path) in err and len(err.splitlines()) == 1, err
        assert "weights_only" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_unwritable_out_is_refused_before_evaluating(tmp_path, capsys) -> None:
    from lift.evaluate import cli

    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub", Path("/proc/lift_eval"), Path("/sys/lift_eval")):
        assert cli(["--baselines", "--out", str(out), *_cli_args(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"python -m lift.evaluate: error: --out {out}:") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "cache").exists()  # refused before any data was read


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_the_published_rife_baseline_interpolates_a_pan_that_blending_ghosts(clip, tmp_path):
    """baseline=rife_hd (the published model, untrained, padded as the official inference pads)
    on a real frame panned 3 px per frame: it moves pixels, so it beats blending clearly."""
    if not pretrained.available() and not os.environ.get("CI"):
        pytest.skip("the published RIFE HD weights are not fetched (make rife-weights)")
    frame = clip[0]
    pan = torch.stack([torch.roll(frame, 3 * k, dims=-1) for k in range(9)])[..., 8:-8].contiguous()
    loader = DataLoader(Windows(pan, window=3), batch_size=4)
    df = evaluate_baselines(loader, eval_cfg=NO_LPIPS, split="test", baselines=("blend", "rife_hd"), progress=False)
    means = df.groupby("arm")["psnr"].mean()
    assert set(means.index) == {"baseline=blend", "baseline=rife_hd"}
    assert means["baseline=rife_hd"] > means["baseline=blend"] + 3.0
    assert available_baselines(gap=4) == ("repeat", "blend")
