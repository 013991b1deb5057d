"""Window 3 is RIFE-m: every parameter of the official ECCV2022-RIFE ``IFNet_m`` (model/IFNet_m.py,
model/refine.py) has the same shape here, under a mapped name, and nothing else exists.

The table lists the official ``state_dict`` names and shapes (IFNet_m at full width: blocks of 240 /
150 / 90 channels, the teacher, Contextnet and Unet with c = 16 and PReLU activations)."""

from __future__ import annotations

import re

import torch

from lift.model import LIFT

RIFE_M_PARAMETERS = 10_710_780

OFFICIAL_SHAPES = {
    "block0.conv0.0.0.weight": (120, 7, 3, 3), "block0.conv0.0.0.bias": (120,),
    "block0.conv0.0.1.weight": (120,), "block0.conv0.1.0.weight": (240, 120, 3, 3),
    "block0.conv0.1.0.bias": (240,), "block0.conv0.1.1.weight": (240,),
    "block0.convblock.0.0.weight": (240, 240, 3, 3), "block0.convblock.0.0.bias": (240,),
    "block0.convblock.0.1.weight": (240,), "block0.convblock.1.0.weight": (240, 240, 3, 3),
    "block0.convblock.1.0.bias": (240,), "block0.convblock.1.1.weight": (240,),
    "block0.convblock.2.0.weight": (240, 240, 3, 3), "block0.convblock.2.0.bias": (240,),
    "block0.convblock.2.1.weight": (240,), "block0.convblock.3.0.weight": (240, 240, 3, 3),
    "block0.convblock.3.0.bias": (240,), "block0.convblock.3.1.weight": (240,),
    "block0.convblock.4.0.weight": (240, 240, 3, 3), "block0.convblock.4.0.bias": (240,),
    "block0.convblock.4.1.weight": (240,), "block0.convblock.5.0.weight": (240, 240, 3, 3),
    "block0.convblock.5.0.bias": (240,), "block0.convblock.5.1.weight": (240,),
    "block0.convblock.6.0.weight": (240, 240, 3, 3), "block0.convblock.6.0.bias": (240,),
    "block0.convblock.6.1.weight": (240,), "block0.convblock.7.0.weight": (240, 240, 3, 3),
    "block0.convblock.7.0.bias": (240,), "block0.convblock.7.1.weight": (240,),
    "block0.lastconv.weight": (240, 5, 4, 4), "block0.lastconv.bias": (5,),
    "block1.conv0.0.0.weight": (75, 18, 3, 3), "block1.conv0.0.0.bias": (75,),
    "block1.conv0.0.1.weight": (75,), "block1.conv0.1.0.weight": (150, 75, 3, 3),
    "block1.conv0.1.0.bias": (150,), "block1.conv0.1.1.weight": (150,),
    "block1.convblock.0.0.weight": (150, 150, 3, 3), "block1.convblock.0.0.bias": (150,),
    "block1.convblock.0.1.weight": (150,), "block1.convblock.1.0.weight": (150, 150, 3, 3),
    "block1.convblock.1.0.bias": (150,), "block1.convblock.1.1.weight": (150,),
    "block1.convblock.2.0.weight": (150, 150, 3, 3), "block1.convblock.2.0.bias": (150,),
    "block1.convblock.2.1.weight": (150,), "block1.convblock.3.0.weight": (150, 150, 3, 3),
    "block1.convblock.3.0.bias": (150,), "block1.convblock.3.1.weight": (150,),
    "block1.convblock.4.0.weight": (150, 150, 3, 3), "block1.convblock.4.0.bias": (150,),
    "block1.convblock.4.1.weight": (150,), "block1.convblock.5.0.weight": (150, 150, 3, 3),
    "block1.convblock.5.0.bias": (150,), "block1.convblock.5.1.weight": (150,),
    "block1.convblock.6.0.weight": (150, 150, 3, 3), "block1.convblock.6.0.bias": (150,),
    "block1.convblock.6.1.weight": (150,), "block1.convblock.7.0.weight": (150, 150, 3, 3),
    "block1.convblock.7.0.bias": (150,), "block1.convblock.7.1.weight": (150,),
    "block1.lastconv.weight": (150, 5, 4, 4), "block1.lastconv.bias": (5,),
    "block2.conv0.0.0.weight": (45, 18, 3, 3), "block2.conv0.0.0.bias": (45,),
    "block2.conv0.0.1.weight": (45,), "block2.conv0.1.0.weight": (90, 45, 3, 3),
    "block2.conv0.1.0.bias": (90,), "block2.conv0.1.1.weight": (90,),
    "block2.convblock.0.0.weight": (90, 90, 3, 3), "block2.convblock.0.0.bias": (90,),
    "block2.convblock.0.1.weight": (90,), "block2.convblock.1.0.weight": (90, 90, 3, 3),
    "block2.convblock.1.0.bias": (90,), "block2.convblock.1.1.weight": (90,),
    "block2.convblock.2.0.weight": (90, 90, 3, 3), "block2.convblock.2.0.bias": (90,),
    "block2.convblock.2.1.weight": (90,), "block2.convblock.3.0.weight": (90, 90, 3, 3),
    "block2.convblock.3.0.bias": (90,), "block2.convblock.3.1.weight": (90,),
    "block2.convblock.4.0.weight": (90, 90, 3, 3), "block2.convblock.4.0.bias": (90,),
    "block2.convblock.4.1.weight": (90,), "block2.convblock.5.0.weight": (90, 90, 3, 3),
    "block2.convblock.5.0.bias": (90,), "block2.convblock.5.1.weight": (90,),
    "block2.convblock.6.0.weight": (90, 90, 3, 3), "block2.convblock.6.0.bias": (90,),
    "block2.convblock.6.1.weight": (90,), "block2.convblock.7.0.weight": (90, 90, 3, 3),
    "block2.convblock.7.0.bias": (90,), "block2.convblock.7.1.weight": (90,),
    "block2.lastconv.weight": (90, 5, 4, 4), "block2.lastconv.bias": (5,),
    "block_tea.conv0.0.0.weight": (45, 21, 3, 3), "block_tea.conv0.0.0.bias": (45,),
    "block_tea.conv0.0.1.weight": (45,), "block_tea.conv0.1.0.weight": (90, 45, 3, 3),
    "block_tea.conv0.1.0.bias": (90,), "block_tea.conv0.1.1.weight": (90,),
    "block_tea.convblock.0.0.weight": (90, 90, 3, 3), "block_tea.convblock.0.0.bias": (90,),
    "block_tea.convblock.0.1.weight": (90,), "block_tea.convblock.1.0.weight": (90, 90, 3, 3),
    "block_tea.convblock.1.0.bias": (90,), "block_tea.convblock.1.1.weight": (90,),
    "block_tea.convblock.2.0.weight": (90, 90, 3, 3), "block_tea.convblock.2.0.bias": (90,),
    "block_tea.convblock.2.1.weight": (90,), "block_tea.convblock.3.0.weight": (90, 90, 3, 3),
    "block_tea.convblock.3.0.bias": (90,), "block_tea.convblock.3.1.weight": (90,),
    "block_tea.convblock.4.0.weight": (90, 90, 3, 3), "block_tea.convblock.4.0.bias": (90,),
    "block_tea.convblock.4.1.weight": (90,), "block_tea.convblock.5.0.weight": (90, 90, 3, 3),
    "block_tea.convblock.5.0.bias": (90,), "block_tea.convblock.5.1.weight": (90,),
    "block_tea.convblock.6.0.weight": (90, 90, 3, 3), "block_tea.convblock.6.0.bias": (90,),
    "block_tea.convblock.6.1.weight": (90,), "block_tea.convblock.7.0.weight": (90, 90, 3, 3),
    "block_tea.convblock.7.0.bias": (90,), "block_tea.convblock.7.1.weight": (90,),
    "block_tea.lastconv.weight": (90, 5, 4, 4), "block_tea.lastconv.bias": (5,),
    "contextnet.conv1.conv1.0.weight": (16, 3, 3, 3), "contextnet.conv1.conv1.0.bias": (16,),
    "contextnet.conv1.conv1.1.weight": (16,), "contextnet.conv1.conv2.0.weight": (16, 16, 3, 3),
    "contextnet.conv1.conv2.0.bias": (16,), "contextnet.conv1.conv2.1.weight": (16,),
    "contextnet.conv2.conv1.0.weight": (32, 16, 3, 3), "contextnet.conv2.conv1.0.bias": (32,),
    "contextnet.conv2.conv1.1.weight": (32,), "contextnet.conv2.conv2.0.weight": (32, 32, 3, 3),
    "contextnet.conv2.conv2.0.bias": (32,), "contextnet.conv2.conv2.1.weight": (32,),
    "contextnet.conv3.conv1.0.weight": (64, 32, 3, 3), "contextnet.conv3.conv1.0.bias": (64,),
    "contextnet.conv3.conv1.1.weight": (64,), "contextnet.conv3.conv2.0.weight": (64, 64, 3, 3),
    "contextnet.conv3.conv2.0.bias": (64,), "contextnet.conv3.conv2.1.weight": (64,),
    "contextnet.conv4.conv1.0.weight": (128, 64, 3, 3), "contextnet.conv4.conv1.0.bias": (128,),
    "contextnet.conv4.conv1.1.weight": (128,), "contextnet.conv4.conv2.0.weight": (128, 128, 3, 3),
    "contextnet.conv4.conv2.0.bias": (128,), "contextnet.conv4.conv2.1.weight": (128,),
    "unet.down0.conv1.0.weight": (32, 17, 3, 3), "unet.down0.conv1.0.bias": (32,),
    "unet.down0.conv1.1.weight": (32,), "unet.down0.conv2.0.weight": (32, 32, 3, 3),
    "unet.down0.conv2.0.bias": (32,), "unet.down0.conv2.1.weight": (32,),
    "unet.down1.conv1.0.weight": (64, 64, 3, 3), "unet.down1.conv1.0.bias": (64,),
    "unet.down1.conv1.1.weight": (64,), "unet.down1.conv2.0.weight": (64, 64, 3, 3),
    "unet.down1.conv2.0.bias": (64,), "unet.down1.conv2.1.weight": (64,),
    "unet.down2.conv1.0.weight": (128, 128, 3, 3), "unet.down2.conv1.0.bias": (128,),
    "unet.down2.conv1.1.weight": (128,), "unet.down2.conv2.0.weight": (128, 128, 3, 3),
    "unet.down2.conv2.0.bias": (128,), "unet.down2.conv2.1.weight": (128,),
    "unet.down3.conv1.0.weight": (256, 256, 3, 3), "unet.down3.conv1.0.bias": (256,),
    "unet.down3.conv1.1.weight": (256,), "unet.down3.conv2.0.weight": (256, 256, 3, 3),
    "unet.down3.conv2.0.bias": (256,), "unet.down3.conv2.1.weight": (256,),
    "unet.up0.0.weight": (512, 128, 4, 4), "unet.up0.0.bias": (128,), "unet.up0.1.weight": (128,),
    "unet.up1.0.weight": (256, 64, 4, 4), "unet.up1.0.bias": (64,), "unet.up1.1.weight": (64,),
    "unet.up2.0.weight": (128, 32, 4, 4), "unet.up2.0.bias": (32,), "unet.up2.1.weight": (32,),
    "unet.up3.0.weight": (64, 16, 4, 4), "unet.up3.0.bias": (16,), "unet.up3.1.weight": (16,),
    "unet.conv.weight": (3, 16, 3, 3), "unet.conv.bias": (3,),
}

# Official module path -> ours (prefix rewrites applied in order).
_RENAMES = [
    (r"^block([0-2])\.", r"blocks.\1."), (r"^block_tea\.", "teacher."),
    (r"\.conv0\.", ".stem."), (r"\.convblock\.", ".trunk."), (r"\.lastconv\.", ".head."),
    (r"^contextnet\.conv([1-4])\.conv([12])\.", lambda m: f"context.levels.{int(m[1]) - 1}.{int(m[2]) - 1}."),
    (r"^unet\.down([0-3])\.conv([12])\.", lambda m: f"unet.down.{m[1]}.{int(m[2]) - 1}."),
    (r"^unet\.up([0-3])\.", r"unet.up.\1."), (r"^unet\.conv\.", "unet.out."),
]


def _ours(official: str) -> str:
    name = official
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def test_window3_parameters_match_the_official_table():
    model = LIFT(window=3, width=1.0)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {_ours(k): v for k, v in OFFICIAL_SHAPES.items()}
    assert len(expected) == len(OFFICIAL_SHAPES)  # the renaming is one-to-one
    assert ours == expected
    assert sum(p.numel() for p in model.parameters()) == RIFE_M_PARAMETERS
    assert sum(torch.Size(s).numel() for s in OFFICIAL_SHAPES.values()) == RIFE_M_PARAMETERS


def test_reference_path_only_adds_modules():
    m3, m15 = LIFT(window=3), LIFT(window=15)
    shared = {k: tuple(v.shape) for k, v in m15.state_dict().items() if not k.startswith("reference.")}
    assert shared == {k: tuple(v.shape) for k, v in m3.state_dict().items()}


def test_width_still_scales_the_channels():
    small = LIFT(window=3, width=0.25)
    assert [b.trunk[0][0].out_channels for b in small.blocks] == [60, 38, 22]
    assert sum(p.numel() for p in small.parameters()) < RIFE_M_PARAMETERS / 5
