"""InputPadder: pad to the network's multiple, crop back exactly what is image-shaped."""

from __future__ import annotations

import pytest
import torch

from lift.model import InputPadder


@pytest.mark.parametrize("size", [(30, 41), (31, 33), (1, 1), (32, 48)])
def test_pad_unpad_round_trip_on_odd_sizes(size: tuple[int, int]) -> None:
    x = torch.rand(2, 4, 3, *size)
    padder = InputPadder(x.shape, 16)
    (padded,) = padder.pad(x)
    h, w = padded.shape[-2:]
    assert h % 16 == 0 and w % 16 == 0 and h - size[0] < 16 and w - size[1] < 16
    assert padder.padded_size == (h, w) and padder.needed == ((h, w) != size)
    torch.testing.assert_close(padder.unpad(padded), x)
    # replicate padding at the bottom and right: the last row and column repeat
    torch.testing.assert_close(padded[..., size[0]:, : size[1]],
                               x[..., -1:, :].expand(*x.shape[:-2], h - size[0], size[1]))
    torch.testing.assert_close(padded[..., : size[0], size[1]:],
                               x[..., :, -1:].expand(*x.shape[:-1], w - size[1]))


def test_pad_takes_several_tensors_of_the_same_size_and_refuses_others() -> None:
    frames, target = torch.rand(1, 2, 3, 9, 10), torch.rand(1, 3, 9, 10)
    padder = InputPadder(target.shape, 8)
    pf, pt = padder.pad(frames, target)
    assert pf.shape == (1, 2, 3, 16, 16) and pt.shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"InputPadder.pad: got a tensor of size \(8, 10\), expected \(9, 10\)"):
        padder.pad(torch.rand(1, 3, 8, 10))
    with pytest.raises(ValueError, match="expected the padded size"):
        padder.unpad(torch.rand(1, 3, 9, 10))
    with pytest.raises(ValueError, match="multiple=0"):
        InputPadder((4, 4), 0)


def test_unpad_outputs_crops_only_the_image_entries() -> None:
    padder = InputPadder((9, 10), 8)
    aux = {"flows": torch.rand(1, 4, 2, 16, 16), "student_preds": [torch.rand(1, 3, 16, 16)] * 2,
           "distill_loss": torch.tensor(0.5), "unknown": torch.rand(1, 3, 16, 16)}
    out = padder.unpad_outputs(aux)
    assert out["flows"].shape == (1, 4, 2, 9, 10)
    assert [p.shape for p in out["student_preds"]] == [(1, 3, 9, 10)] * 2
    assert out["distill_loss"] is aux["distill_loss"]
    # an entry that only happens to have the padded size is not an image output: left as it is
    assert out["unknown"] is aux["unknown"]


def test_no_padding_needed_returns_the_same_tensor() -> None:
    x = torch.rand(1, 3, 32, 64)
    padder = InputPadder(x.shape, 16)
    assert not padder.needed and padder.pad(x)[0] is x
