"""Images for TensorBoard: prediction vs ground truth, the window's frames, error maps, flows, fusion weights.

Every function takes batched tensors as the model and dataset produce them (see the shared contracts
in ARCHITECTURE.md) and returns one float image ``[3, H, W]`` in [0, 1], ready for
``SummaryWriter.add_image``. Rows are samples, columns are the things being compared.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.utils import flow_to_image, make_grid

# A perceptually ordered colormap (matplotlib's "inferno", 9 anchors) so error maps read as heat,
# kept inline so that logging does not import matplotlib into every training process.
_INFERNO = torch.tensor([
    [0.001, 0.000, 0.014], [0.122, 0.047, 0.282], [0.329, 0.060, 0.430],
    [0.527, 0.134, 0.416], [0.735, 0.216, 0.330], [0.902, 0.361, 0.192],
    [0.986, 0.570, 0.039], [0.976, 0.809, 0.201], [0.988, 0.998, 0.645],
])


def _check(name: str, x: Tensor, ndim: int, channels: int | None = None) -> None:
    if x.ndim != ndim or (channels is not None and x.shape[-3] != channels):
        want = f"{ndim} dims" + (f" with {channels} channels at dim -3" if channels is not None else "")
        raise ValueError(f"{name}: expected a tensor with {want}, got shape {tuple(x.shape)}")


def _grid(rows: list[list[Tensor]], pad: int = 2) -> Tensor:
    """rows of [3, H, W] images -> one [3, H', W'] image, one row per list."""
    ncol = max(len(r) for r in rows)
    tiles = []
    for r in rows:
        tiles += r + [torch.zeros_like(r[0])] * (ncol - len(r))
    return make_grid(torch.stack(tiles), nrow=ncol, padding=pad, pad_value=1.0)


def _prep(x: Tensor, num: int) -> Tensor:
    return x[:num].detach().float().cpu()


def colormap(values: Tensor, vmax: float | None = None) -> Tensor:
    """[H, W] non-negative values -> [3, H, W] inferno colours; vmax None scales by the max."""
    v = values.detach().float().cpu()
    top = float(v.max()) if vmax is None else vmax
    v = (v / max(top, 1e-8)).clamp(0, 1) * (len(_INFERNO) - 1)
    lo = v.floor().long().clamp(max=len(_INFERNO) - 2)
    frac = (v - lo.float()).unsqueeze(-1)
    rgb = _INFERNO[lo] * (1 - frac) + _INFERNO[lo + 1] * frac
    return rgb.permute(2, 0, 1)


def error_map(pred: Tensor, target: Tensor, num: int = 2, vmax: float = 0.25) -> Tensor:
    """Per-pixel mean absolute error, colour-coded; a fixed vmax keeps epochs comparable."""
    _check("pred", pred, 4, 3)
    _check("target", target, 4, 3)
    err = (_prep(pred, num) - _prep(target, num)).abs().mean(dim=1)
    return _grid([[colormap(e, vmax)] for e in err])


def prediction_vs_target(pred: Tensor, target: Tensor, num: int = 2) -> Tensor:
    """Each row: prediction | ground truth | error map."""
    _check("pred", pred, 4, 3)
    _check("target", target, 4, 3)
    p, t = _prep(pred, num).clamp(0, 1), _prep(target, num).clamp(0, 1)
    err = (p - t).abs().mean(dim=1)
    return _grid([[p[i], t[i], colormap(err[i], 0.25)] for i in range(p.shape[0])])


def window_strip(frames: Tensor, times: Tensor, target: Tensor | None = None,
                 timestep: Tensor | None = None, num: int = 2) -> Tensor:
    """Each row: the window's input frames in temporal order, with the target at its time if given.

    The dataset orders inputs anchors first, then references; sorting by `times` shows the window as
    it was filmed (far left reference ... left anchor, target, right anchor ... far right reference).
    """
    _check("frames", frames, 5, 3)
    f, tm = _prep(frames, num).clamp(0, 1), _prep(times, num)
    rows = []
    for i in range(f.shape[0]):
        items = [(float(tm[i, j]), f[i, j]) for j in range(f.shape[1])]
        if target is not None:
            ts = float(timestep[i]) if timestep is not None else 0.5
            items.append((ts, _prep(target, num)[i].clamp(0, 1)))
        items.sort(key=lambda it: it[0])
        rows.append([img for _, img in items])
    return _grid(rows)


def flow_images(flows: Tensor, times: Tensor | None = None, num: int = 2) -> Tensor:
    """Each row: the backward flow from the target to every input, colour-coded by flow_to_image.

    flow_to_image normalises each field by its own largest magnitude, so hue is direction and
    saturation is speed relative to that field.
    """
    _check("flows", flows, 5, 2)
    fl = _prep(flows, num)
    order = _time_order(times, num, fl.shape[1])
    rows = []
    for i in range(fl.shape[0]):
        rgb = flow_to_image(fl[i]).float() / 255.0  # [N, 3, H, W]
        rows.append([rgb[j] for j in order[i]])
    return _grid(rows)


def fusion_weight_images(weights: Tensor, times: Tensor | None = None, num: int = 2) -> Tensor:
    """Each row: the softmax fusion weight of every input (white = this input supplies the pixel)."""
    _check("fusion weights", weights, 5, 1)
    w = _prep(weights, num).clamp(0, 1)
    order = _time_order(times, num, w.shape[1])
    return _grid([[w[i, j].expand(3, -1, -1) for j in order[i]] for i in range(w.shape[0])])


def _time_order(times: Tensor | None, num: int, n: int) -> list[list[int]]:
    if times is None:
        return [list(range(n))] * num
    tm = _prep(times, num)
    return [torch.argsort(tm[i], stable=True).tolist() for i in range(tm.shape[0])]


def training_images(batch: dict[str, Tensor], pred: Tensor, aux: dict, num: int = 2) -> dict[str, Tensor]:
    """All image panels for one batch, keyed by TensorBoard tag suffix; panels whose inputs are
    missing from `aux` (e.g. a model variant without fusion weights) are left out."""
    num = max(1, min(num, pred.shape[0]))
    out = {
        "prediction_vs_target": prediction_vs_target(pred, batch["target"], num),
        "error_map": error_map(pred, batch["target"], num),
        "window": window_strip(batch["frames"], batch["times"], batch["target"], batch.get("timestep"), num),
    }
    times = batch.get("times")
    if isinstance(aux.get("flows"), Tensor):
        out["flows"] = flow_images(aux["flows"], times, num)
    if isinstance(batch.get("flow_gt"), Tensor):
        out["flows_ground_truth"] = flow_images(batch["flow_gt"], times, num)
    if isinstance(aux.get("fusion_weights"), Tensor):
        out["fusion_weights"] = fusion_weight_images(aux["fusion_weights"], times, num)
    return out
