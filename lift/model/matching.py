"""Reference matching: a parameter-free local search that aligns the references with each other.

The reference path (lift.model.network) refines each pair of references (the k-th left and the
k-th right) from flows extrapolated from the frames inside it, nearest pair first. A learned block
corrects small errors, but it is trained from scratch, and an extrapolated start can be many pixels
off: it inherits the anchors' errors (large early in training), and inside an occlusion at the
anchor times the anchors' flow is the occluder's, not the content's. The references themselves
know better, and :func:`align_references` asks them before the learned block runs:

* the nearest pair is matched with itself: under the linear motion the extrapolation assumes, the
  left reference moved by ``u * delta_left`` and the right one by ``u * delta_right`` for one
  velocity ``u``, and at the right ``u`` the two warped references agree, also where both anchors
  are wrong. It is searched from two starts (the anchors' extrapolation and no motion), and the
  better match is kept;
* a farther reference is matched against its inner neighbour on the same side, already aligned to
  the target: the two members of a far pair lie on opposite sides of the target and rarely both
  see a pixel, while neighbours do, and the step from the neighbour's flow is small.

:func:`match_flows` is the search: a cost volume of integer offsets around the start (like the
correlation lookup of RAFT or PWC-Net around the current estimate), coarse to fine, soft-argmin.
It replaces the start only where it has evidence (:func:`_keep_or_correct`). It has no parameters
and no gradient: it moves the starting point of the learned refinement, from the first step of
training on.

Known limit: the offsets are whole pixels of the *moving* frame, and in the symmetric pair search
the other frame moves by as much in the opposite direction, so the pair's relative displacement
takes even values only on each level's grid. Motions whose relative displacement is odd on the
coarse grid are found less reliably (on synthetic colour-noise textures at 64x64 with an untrained
model: 2 px/frame diagonal motions are aligned to 1.3 px, (1, 2) and (-3, 1) px/frame not at all).
Searching the relative displacement in whole pixels (each frame moving by a fraction) fixes those
cases; at the reach the known-answer benchmark needs, it costs a 9x9 coarse window instead of 5x5,
which did not fit the window-15 cost target on the CPU. Not done.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lift.model.warp import backward_warp_many, samples_inside

# Search radius in pixels of each level, coarse to fine: level 0 runs at half the resolution of
# the given frames (its radius counts twice), the last at the given resolution.
SEARCH_RADII = (2, 1)
# A farther reference starts from the refined pair inside it, a small step away: one level.
STEP_RADII = (1,)
# Soft-argmin temperature, in units of the matching cost (mean absolute difference over a 3x3
# window of the frames compared, in [0, 1]: luminance in the reference path). Small enough that
# one clear minimum wins; in a textureless region the costs are equal and the soft-argmin returns
# the centre, i.e. keeps the start.
TEMPERATURE = 0.01
# Where the start samples outside a frame, the correction comes from this window of pixels with
# evidence around it (pixels of the searched resolution).
FILL_WINDOW = 9
# The cost of a candidate that samples outside the frame (colour differences are at most 1).
OUT_OF_FRAME_COST = 1.0


def _box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a size x size window per channel, zero outside the frame (avg_pool2d's result as a
    separable depthwise convolution: several times faster on a CPU for the cost volume's channels)."""
    channels = x.shape[1]
    kernel = x.new_full((channels, 1, size, 1), 1.0 / size)
    x = F.conv2d(x, kernel, padding=(size // 2, 0), groups=channels)
    return F.conv2d(x, kernel.transpose(2, 3), padding=(0, size // 2), groups=channels)


def _offsets(radius: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The (2r+1)^2 integer offsets [K, 2] (x, y) of a square search window."""
    r = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack((gx.flatten(), gy.flatten()), 1)


def _both_inside(flows: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] bool: where both flows of a pair [B, 2, 2, H, W] sample inside their frames."""
    return samples_inside(flows[:, 0]) * samples_inside(flows[:, 1]) > 0


def matching_cost(moving: torch.Tensor, other: torch.Tensor, flows_moving: torch.Tensor, flows_other: torch.Tensor
                  ) -> torch.Tensor:
    """[B, K, H, W]: for each of K candidate flow pairs ([B, K, 2, H, W] each; `flows_other` may be
    [B, 1, 2, H, W], the same for every candidate), the mean absolute difference of the two frames
    [B, C, H, W] warped by them, averaged over the pixels of a 3x3 window where both flows sample
    inside their frames; OUT_OF_FRAME_COST where the pixel's own flows sample outside (the border
    that such a sample repeats must not look like a match, and a neighbour's must not count against
    a flow that is right)."""
    batch, k, _, height, width = flows_moving.shape
    diff = (backward_warp_many(moving, flows_moving) - backward_warp_many(other, flows_other)).abs().mean(2)
    inside_other = samples_inside(flows_other.flatten(0, 1)).view(batch, -1, height, width)
    inside = samples_inside(flows_moving.flatten(0, 1)).view(batch, k, height, width) * inside_other
    pooled = _box_mean(diff * inside, 3) / _box_mean(inside, 3).clamp(min=1e-6)
    return torch.where(inside > 0, pooled, torch.full_like(pooled, OUT_OF_FRAME_COST))


def _search(moving: torch.Tensor, other: torch.Tensor, flows: torch.Tensor, ratio: torch.Tensor | None,
            radius: int) -> torch.Tensor:
    """One level: flows [B, 2, 2, H, W] (of `moving`, of `other`) moved by the soft-argmin offset of
    the first; the second moves by ``offset * ratio`` per sample (None: it stays where it is, and is
    warped once). Every candidate is warped exactly."""
    offsets = _offsets(radius, flows.device, flows.dtype)  # [K, 2]
    steps = offsets.view(1, -1, 2, 1, 1)
    other_flows = flows[:, 1:] if ratio is None else flows[:, 1:] + steps * ratio.view(-1, 1, 1, 1, 1)
    cost = matching_cost(moving, other, flows[:, :1] + steps, other_flows)
    weights = torch.softmax(-cost / TEMPERATURE, dim=1)
    shift = torch.einsum("bkhw,kc->bchw", weights, offsets)  # [B, 2, H, W]
    if ratio is None:
        return torch.stack((flows[:, 0] + shift, flows[:, 1]), 1)
    return torch.stack((flows[:, 0] + shift, flows[:, 1] + shift * ratio.view(-1, 1, 1, 1)), 1)


@torch.no_grad()
def match_flows(moving: torch.Tensor, other: torch.Tensor, flows: torch.Tensor, ratio: torch.Tensor | None,
                radii: tuple[int, ...] = SEARCH_RADII) -> torch.Tensor:
    """Flows target->(moving, other) [B, 2, 2, H, W] after a coarse-to-fine local search from `flows`
    for the offset at which the two frames, warped to the target, agree.

    `moving`, `other`: frames [B, C, H, W]; `flows`: their starting flows (pixels of this
    resolution); `ratio` [B]: how far the second flow moves per pixel the first moves (for a pair
    under linear motion, delta_other / delta_moving; None keeps the second fixed, e.g. a neighbour
    already aligned); `radii`: the search radius of each level, coarse to fine (the last at this
    resolution, each before it at half the next one's). Computed in float32 whatever the inputs;
    returns the dtype of `flows`.
    """
    if flows.dim() != 5 or flows.shape[1:3] != (2, 2) or flows.shape[-2:] != moving.shape[-2:]:
        raise ValueError(f"match_flows: expected flows [B, 2, 2, H, W] matching the frames "
                         f"{tuple(moving.shape)}, got {tuple(flows.shape)}")
    dtype = flows.dtype
    moving, other, start = moving.float(), other.float(), flows.float()
    out = start
    ratio = None if ratio is None else ratio.float()
    height, width = moving.shape[-2:]
    for level, radius in enumerate(radii):
        factor = 2 ** (len(radii) - 1 - level)
        if factor == 1:
            out = _search(moving, other, out, ratio, radius)
            continue
        size = (height // factor, width // factor)
        small_flows = F.interpolate(out.flatten(1, 2), size=size, mode="bilinear", align_corners=False) / factor
        small_flows = small_flows.view(-1, 2, 2, *size)
        small = _search(F.avg_pool2d(moving, factor), F.avg_pool2d(other, factor), small_flows, ratio, radius)
        # Only the correction is carried up, so the start keeps its full-resolution detail.
        correction = (small - small_flows).flatten(1, 2) * factor
        out = out + F.interpolate(correction, size=(height, width), mode="bilinear",
                                  align_corners=False).view_as(out)
    return _keep_or_correct(moving, other, start, out).to(dtype)


def _keep_or_correct(moving: torch.Tensor, other: torch.Tensor, start: torch.Tensor, found: torch.Tensor
                     ) -> torch.Tensor:
    """The start, corrected by the search where the search has evidence.

    Where the start samples inside both frames, `found` replaces it if its matching cost is lower.
    Where the start samples outside a frame, that pixel's cost says nothing
    (a right flow near the border samples outside too), so it takes the correction of the pixels
    with evidence around it (a normalised 9x9 average; with none within reach, the mean correction
    of its frame): a start that is right stays right, and one that is off by a pan follows the
    evidence next to it."""
    inside = _both_inside(start)  # [B, 1, H, W]
    better = inside & (matching_cost(moving, other, found[:, :1], found[:, 1:])
                       < matching_cost(moving, other, start[:, :1], start[:, 1:]))
    correction = torch.where(better.unsqueeze(2), found - start, torch.zeros_like(start)).flatten(1, 2)
    weight = inside.to(start.dtype)
    local_weight = _box_mean(weight, FILL_WINDOW)
    local = _box_mean(correction * weight, FILL_WINDOW) / local_weight.clamp(min=1e-6)
    frame = (correction * weight).sum((2, 3), keepdim=True) / weight.sum((2, 3), keepdim=True).clamp(min=1.0)
    filled = torch.where(local_weight > 0, local, frame.expand_as(local)).view_as(start)
    return start + torch.where(inside.unsqueeze(2), correction.view_as(start), filled)


def _better_of(moving: torch.Tensor, other: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per pixel, whichever of two flow pairs [B, 2, 2, H, W] matches better. Where both sample
    inside the frames, by the pixel's matching cost; elsewhere the pixel's cost says nothing, and
    the frame's choice decides (the lower mean cost over the pixels where both sample inside)."""
    costs = [matching_cost(moving, other, f[:, :1], f[:, 1:]) for f in (first, second)]  # [B, 1, H, W]
    both = _both_inside(first) & _both_inside(second)
    count = both.sum((1, 2, 3)).clamp(min=1)
    frame = ((costs[1] - costs[0]) * both).sum((1, 2, 3)) / count < 0  # [B]: the second is better
    second_wins = torch.where(both, costs[1] < costs[0], frame.view(-1, 1, 1, 1))
    return torch.where(second_wins.unsqueeze(2), second, first)


@torch.no_grad()
def align_references(pair: torch.Tensor, flows: torch.Tensor, delta: torch.Tensor,
                     inner: torch.Tensor | None) -> torch.Tensor:
    """Flows target->pair [B, 2, 2, H, W] after the search, from the extrapolated `flows`.

    `pair` [B, 2, C, H, W]: the k-th left and right reference; `delta` [B, 2]: their times relative
    to the target. The nearest pair (`inner` None) is matched with itself, from two starts; a
    farther pair is matched reference by reference against `inner` [B, 2, C, H, W], the inner
    pair's references warped to the target (see the module doc).

    The search compares luminance (the mean of the colour channels): it finds where the frames
    line up, for which one channel is enough, at a third of the sampling cost."""
    pair = pair.mean(2, keepdim=True)
    inner = None if inner is None else inner.mean(2, keepdim=True)
    batch = pair.shape[0]
    if inner is None:
        ratio = delta[:, 1] / delta[:, 0]
        found = [match_flows(pair[:, 0], pair[:, 1], start, ratio) for start in (flows, torch.zeros_like(flows))]
        return _better_of(pair[:, 0], pair[:, 1], *found)
    fixed = torch.zeros_like(flows.flatten(0, 1))
    out = match_flows(pair.flatten(0, 1), inner.flatten(0, 1), torch.stack((flows.flatten(0, 1), fixed), 1),
                      None, radii=STEP_RADII)
    return out[:, 0].unflatten(0, (batch, 2))
