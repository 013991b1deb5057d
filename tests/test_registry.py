"""lift.registry: the one registry mechanism behind datasets and models."""

from __future__ import annotations

import sys
from typing import ClassVar

import pytest

from lift.config import ConfigError, load_config
from lift.data.registry import DATASETS
from lift.model import LIFT
from lift.model.registry import MODELS
from lift.registry import Registry, RegistryError
from lift.train import check_registries


class _Alpha:
    name: ClassVar[str] = "alpha"


class _Beta:
    name: ClassVar[str] = "beta"


def test_register_and_look_up() -> None:
    reg: Registry[type] = Registry("widget")
    assert reg.register(_Alpha) is _Alpha  # a decorator returns the class unchanged
    reg.register(_Beta)
    assert reg.get("alpha") is _Alpha and reg.get("beta") is _Beta
    assert reg.names() == ["alpha", "beta"] and "alpha" in reg and "gamma" not in reg


def test_a_miss_names_the_known_entries_and_the_config_key() -> None:
    reg: Registry[type] = Registry("widget")
    reg.register(_Beta)
    reg.register(_Alpha)
    with pytest.raises(RegistryError, match=r"^unknown widget 'gamma'; known widgets: alpha, beta$"):
        reg.get("gamma")
    with pytest.raises(RegistryError, match=r"^thing.kind: got 'gamma'; known widgets: alpha, beta$"):
        reg.get("gamma", "thing.kind")


def test_a_second_class_under_a_taken_name_is_refused() -> None:
    reg: Registry[type] = Registry("widget")
    reg.register(_Alpha)
    reg.register(_Alpha)  # the same class again (a module reload) is fine

    class Other:
        name: ClassVar[str] = "alpha"

    with pytest.raises(RegistryError, match=r"widget name 'alpha' is already registered by .*_Alpha"):
        reg.register(Other)

    class Nameless:
        pass

    with pytest.raises(RegistryError, match=r"Nameless: a registered widget needs .*`name`"):
        reg.register(Nameless)


def test_builtin_modules_are_imported_on_the_first_lookup(tmp_path, monkeypatch) -> None:
    reg: Registry[type] = Registry("widget", builtin_modules=("_widget_plugin",))
    host = type(sys)("_widget_host")
    host.REG = reg
    monkeypatch.setitem(sys.modules, "_widget_host", host)
    (tmp_path / "_widget_plugin.py").write_text(
        "from _widget_host import REG\n\n\n@REG.register\nclass Gamma:\n    name = 'gamma'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "_widget_plugin", raising=False)
    assert "_widget_plugin" not in sys.modules
    assert reg.get("gamma").__name__ == "Gamma"  # the lookup imported the module, which registered it
    assert "_widget_plugin" in sys.modules
    with pytest.raises(ModuleNotFoundError):
        Registry("widget", builtin_modules=("_no_such_widget_module",)).names()


def test_datasets_and_models_use_it() -> None:
    assert {"video_folder", "synthetic", "known_answer", "ucf101", "vimeo", "x4k"} <= set(DATASETS.names())
    assert MODELS.get("lift") is LIFT


@pytest.mark.parametrize("override, message", [
    ("data.dataset=nosuch", r"^data.dataset: got 'nosuch'; known datasets: .*video_folder"),
    ("model.name=rife9000", r"^model.name: got 'rife9000'; known models: lift$"),
])
def test_check_registries_is_a_lookup_that_names_the_field(override: str, message: str) -> None:
    check_registries(load_config(None))
    with pytest.raises(ConfigError, match=message):
        check_registries(load_config(None, [override]))
