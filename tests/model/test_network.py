from __future__ import annotations

import pytest
import torch

from lift.config import LossConfig, ModelConfig
from lift.model import LIFT, MODELS, LIFTLoss, build_model, extrapolate_flows, get_model_class
from lift.window import WindowSpec
from lift.model.network import distillation_loss

TINY = ModelConfig(width=0.25, block_depth=1)
SIZE = (32, 32)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("window", [3, 7, 15])
@pytest.mark.parametrize("a,gap", [(1, 4), (1, 2), (3, 4)])  # timesteps 0.25, 0.5, 0.75
def test_shapes_and_ranges(window, a, gap, make_batch):
    torch.manual_seed(0)
    model = build_model(TINY, window)
    frames, times, timestep, target = make_batch(window, a=a, gap=gap)
    assert torch.allclose(timestep, torch.full((2,), a / gap))
    b, n = frames.shape[:2]
    assert n == window - 1 == model.num_inputs
    model.eval()
    with torch.no_grad():
        pred, aux = model(frames, times, timestep)
    assert pred.shape == (b, 3, *SIZE) and pred.dtype == torch.float32
    assert pred.min() >= 0 and pred.max() <= 1 and torch.isfinite(pred).all()
    assert aux["flows"].shape == (b, n, 2, *SIZE)
    assert aux["warped"].shape == (b, n, 3, *SIZE)
    weights = aux["fusion_weights"]
    assert weights.shape == (b, n, 1, *SIZE)
    assert weights.min() >= 0
    torch.testing.assert_close(weights.sum(1), torch.ones(b, 1, *SIZE))
    assert len(aux["student_preds"]) == len(TINY.block_scales)
    assert all(p.shape == (b, 3, *SIZE) for p in aux["student_preds"])
    assert "teacher_pred" not in aux and "distill_loss" not in aux

    model.train()
    pred, aux = model(frames, times, timestep, target)
    assert aux["teacher_pred"].shape == (b, 3, *SIZE)
    assert aux["teacher_flows"].shape == (b, 2, 2, *SIZE)
    assert aux["distill_loss"].dim() == 0 and aux["distill_loss"] >= 0


@pytest.mark.parametrize("window", [3, 7])
def test_gradient_reaches_every_parameter(window, make_batch):
    torch.manual_seed(0)
    model = build_model(TINY, window).train()
    frames, times, timestep, target = make_batch(window)
    loss_fn = LIFTLoss(LossConfig(census=0.1, smoothness=0.1))
    # The reference block's output layer starts at zero (pure extrapolation), so the layers
    # before it get their first gradient after one step: take that step, then check.
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        pred, aux = model(frames, times, timestep, target)
        total, _ = loss_fn(pred, aux, target)
        total.backward()
        opt.step()
    missing = [name for name, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient for {missing}"


def test_window3_has_no_reference_path_and_parameters_do_not_grow_with_window():
    m3, m7, m15 = (build_model(TINY, w) for w in (3, 7, 15))
    assert m3.reference is None and m3.reference_parameters() == []
    assert not any("reference" in name for name, _ in m3.named_parameters())
    assert _params(m7) == _params(m15)
    assert _params(m15) - _params(m3) == sum(p.numel() for p in m15.reference_parameters()) > 0
    # Same names and shapes apart from the reference path: a window-3 checkpoint's weights
    # are exactly the shared part of a window-15 model.
    shared = {k: v.shape for k, v in m15.state_dict().items() if not k.startswith("reference.")}
    assert shared == {k: v.shape for k, v in m3.state_dict().items()}


def test_full_size_parameter_count_is_rife_like():
    model = LIFT(window=15, width=1.0)
    total = _params(model)
    assert 8e6 < total < 14e6  # RIFE's IFNet + context + U-Net is ~10M
    assert [b.trunk[0][0].out_channels for b in model.blocks] == [240, 150, 90]  # RIFE-m


def test_trained_window15_model_runs_with_fewer_references(make_batch):
    torch.manual_seed(0)
    model = build_model(TINY, 15)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = LIFTLoss(LossConfig())
    frames, times, timestep, target = make_batch(15)
    for _ in range(3):
        pred, aux = model(frames, times, timestep, target)
        total, _ = loss_fn(pred, aux, target)
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    for window in (7, 3):
        frames7, times7, timestep7, target7 = make_batch(window)
        with torch.no_grad():
            pred, aux = model(frames7, times7, timestep7)
        n = window - 1
        assert pred.shape == target7.shape and torch.isfinite(pred).all()
        assert aux["fusion_weights"].shape[1] == n
        torch.testing.assert_close(aux["fusion_weights"].sum(1), torch.ones(2, 1, *SIZE))
    # Window 7 is a subset of window 15 (same anchors, the 2 nearest references per side): every
    # frame it shares gets the same flow, whatever the number of references next to it.
    frames15, times15, ts15, _ = make_batch(15)
    keep = [0, 1, 2, 3, 8, 9]  # input order: anchors, left refs 1..6, right refs 1..6
    torch.testing.assert_close(times15[0, keep], torch.tensor(WindowSpec(7).input_times()))
    with torch.no_grad():
        _, aux15 = model(frames15, times15, ts15)
        _, aux7 = model(frames15[:, keep], times15[:, keep], ts15)
    torch.testing.assert_close(aux15["flows"][:, keep], aux7["flows"])


def test_window3_model_rejects_references_and_errors_name_the_problem(make_batch):
    model = build_model(TINY, 3)
    frames, times, timestep, _ = make_batch(7)
    with pytest.raises(ValueError, match="no reference path"):
        model(frames, times, timestep)
    frames, times, timestep, _ = make_batch(3)
    with pytest.raises(ValueError, match=r"H=24, W=32 is not a multiple of 16"):
        model(frames[..., :24, :], times, timestep)
    with pytest.raises(ValueError, match="times"):
        model(frames, times[:, :1], timestep)
    with pytest.raises(ValueError, match="target"):
        model(frames, times, timestep, target=frames[:, 0, :, :16])
    with pytest.raises(ValueError, match="LIFT: window: got 4; expected an odd integer >= 3"):
        LIFT(window=4)
    with pytest.raises(ValueError, match="unknown model .rife9000.; known models: lift"):
        get_model_class("rife9000")
    assert MODELS.get("lift") is LIFT and "lift" in MODELS.names()


def test_size_multiple_follows_the_downsampling(make_batch):
    assert build_model(TINY, 3).size_multiple == 16
    assert build_model(ModelConfig(width=0.25, block_depth=1, block_scales=[8, 4, 2, 1]), 3).size_multiple == 32
    small = build_model(ModelConfig(width=0.25, block_depth=1, block_scales=[2, 1], refine=False), 7)
    assert small.size_multiple == 8 and small.unet is None
    frames, times, timestep, target = make_batch(7, size=(24, 40))
    pred, aux = small(frames, times, timestep, target)
    assert pred.shape == (2, 3, 24, 40)


def test_bf16_autocast_forward_on_cpu(make_batch):
    torch.manual_seed(0)
    model = build_model(TINY, 7)
    frames, times, timestep, target = make_batch(7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred, aux = model(frames, times, timestep, target)
        total, _ = LIFTLoss(LossConfig(census=0.1, smoothness=0.1))(pred, aux, target)
    assert torch.isfinite(pred).all() and pred.min() >= 0 and pred.max() <= 1
    assert aux["flows"].dtype == torch.float32  # flows accumulate in float32 even under autocast
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    with torch.no_grad():
        ref, _ = model(frames, times, timestep, target)
    assert (ref - pred.float()).abs().mean() < 0.05


def test_timestep_accepts_scalar(make_batch):
    model = build_model(TINY, 3).eval()
    frames, times, timestep, _ = make_batch(3)
    with torch.no_grad():
        a, _ = model(frames, times, timestep)
        b, _ = model(frames, times, timestep[0])
    torch.testing.assert_close(a, b)


# ---- extrapolation --------------------------------------------------------------------------

def _anchor_flows(d0: torch.Tensor, d1: torch.Tensor, h: int = 2, w: int = 3) -> torch.Tensor:
    flows = torch.zeros(1, 2, 2, h, w)
    flows[0, 0] = d0.view(2, 1, 1)
    flows[0, 1] = d1.view(2, 1, 1)
    return flows


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("tau", [0.25, 0.5, 0.75])
def test_extrapolation_is_exact_for_constant_velocity(quadratic, tau):
    vel = torch.tensor([3.0, -1.0])  # pixels per anchor gap
    anchors = _anchor_flows(vel * (0 - tau), vel * (1 - tau))
    ref_times = torch.tensor([[-0.5, -2.0, 1.5, 4.0]])
    out = extrapolate_flows(anchors, ref_times, torch.tensor([tau]), quadratic=quadratic)
    expected = (ref_times[0] - tau).view(-1, 1) * vel
    torch.testing.assert_close(out[0, :, :, 0, 0], expected)


@pytest.mark.parametrize("quadratic", [False, True])
def test_extrapolation_from_an_inner_pair_of_references(quadratic):
    # The reference cascade extrapolates from the refined pair inside (here at times -1 and 2).
    tau, vel, acc = 0.5, torch.tensor([1.5, 2.0]), torch.tensor([0.4, -0.6])

    def disp(dt: float) -> torch.Tensor:
        return vel * dt + (0.5 * acc * dt ** 2 if quadratic else 0.0)

    inner = _anchor_flows(disp(-1 - tau), disp(2 - tau))
    ref_times = torch.tensor([[-2.5, 3.5]])
    out = extrapolate_flows(inner, ref_times, torch.tensor([tau]), quadratic=quadratic,
                            source_times=torch.tensor([[-1.0, 2.0]]))
    expected = torch.stack([disp(t - tau) for t in ref_times[0].tolist()])
    torch.testing.assert_close(out[0, :, :, 0, 0], expected)


def test_quadratic_extrapolation_fits_constant_acceleration():
    tau = 0.5
    vel, acc = torch.tensor([2.0, 1.0]), torch.tensor([4.0, -2.0])

    def disp(dt: float) -> torch.Tensor:
        return vel * dt + 0.5 * acc * dt ** 2

    anchors = _anchor_flows(disp(-tau), disp(1 - tau))
    ref_times = torch.tensor([[-1.0, 2.5]])
    quad = extrapolate_flows(anchors, ref_times, torch.tensor([tau]), quadratic=True)
    lin = extrapolate_flows(anchors, ref_times, torch.tensor([tau]), quadratic=False)
    expected = torch.stack([disp(t - tau) for t in ref_times[0].tolist()])
    torch.testing.assert_close(quad[0, :, :, 1, 2], expected)
    assert (lin[0, :, :, 1, 2] - expected).abs().max() > 1.0  # linear misses the curvature


def test_quadratic_falls_back_to_linear_at_a_degenerate_timestep():
    anchors = _anchor_flows(torch.tensor([0.0, 0.0]), torch.tensor([2.0, 2.0]))
    ref_times = torch.tensor([[2.0]])
    tau = torch.tensor([0.0])
    quad = extrapolate_flows(anchors, ref_times, tau, quadratic=True)
    lin = extrapolate_flows(anchors, ref_times, tau, quadratic=False)
    assert torch.isfinite(quad).all()
    torch.testing.assert_close(quad, lin)
    torch.testing.assert_close(lin[0, 0, :, 0, 0], torch.tensor([4.0, 4.0]))


def test_distillation_only_where_teacher_is_better():
    target = torch.zeros(1, 3, 4, 4)
    student_pred = torch.full((1, 3, 4, 4), 0.5)
    student_flow = torch.zeros(1, 4, 4, 4, requires_grad=True)
    teacher_flow = torch.ones(1, 4, 4, 4, requires_grad=True)
    better = distillation_loss([student_pred], [student_flow], torch.zeros(1, 3, 4, 4), teacher_flow, target)
    worse = distillation_loss([student_pred], [student_flow], torch.ones(1, 3, 4, 4), teacher_flow, target)
    assert better.item() == pytest.approx(1.0, abs=1e-3)
    assert worse.item() == 0.0
    better.backward()
    assert student_flow.grad is not None and student_flow.grad.abs().sum() > 0
    assert teacher_flow.grad is None  # the teacher is the reference, not pulled towards the student


def test_references_come_in_pairs(make_batch):
    model = build_model(TINY, 7).eval()
    frames, times, timestep, _ = make_batch(7)
    with pytest.raises(ValueError, match="references come in pairs"):
        model(frames[:, :5], times[:, :5], timestep)


@pytest.mark.parametrize("matching", [True, False])
# Diagonal motions: their pair displacement is even on the search's grid (lift.model.matching's
# "known limit": (1, 2) or (-3, 1) px/frame are not found from an untrained model's start).
@pytest.mark.parametrize("velocity", [(2, -2), (-2, 2), (2, 2)])
def test_an_untrained_reference_path_is_aligned_by_the_matching(make_window, matching, velocity):
    # Untrained anchor flows are off by pixels, and the flows extrapolated from them by several
    # times that far away; the pair matching and the cascade bring the references closer before
    # any training (the learned block starts at zero, so the refined flow is the matched one).
    torch.manual_seed(0)
    model = build_model(ModelConfig(width=0.25, block_depth=1, reference_matching=matching), 15).eval()
    win = make_window(15, size=(64, 64), velocity=velocity)
    with torch.no_grad():
        _, aux = model(win.frames[None], win.times[None], win.timestep[None])

    def epe(index: list[int]) -> tuple[float, float]:
        """(refined, extrapolated) end-point error of the inputs `index` where they see the target."""
        gt, valid = win.flow_gt[index], win.valid[index]
        errors = [((flows - gt).norm(dim=1, keepdim=True) * valid).sum() / valid.sum()
                  for flows in (aux["flows"][0, index], aux["reference_init_flows"][0, [i - 2 for i in index]])]
        return float(errors[0]), float(errors[1])

    nearest, farthest = epe([2, 8]), epe([7, 13])  # 2 and 7 source frames from the target
    if matching:
        assert nearest[0] < nearest[1]
        assert farthest[0] < 0.5 * farthest[1]
    else:
        assert nearest[0] == pytest.approx(nearest[1], abs=1e-4)
        assert farthest[0] == pytest.approx(farthest[1], abs=1e-4)
