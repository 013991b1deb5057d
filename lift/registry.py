"""One registry mechanism for named components (datasets, models), after timm's ``register_model``.

A :class:`Registry` maps names to classes. Classes enter it through its decorator (the name is the
class's ``name`` attribute); a lookup of an unknown name raises :class:`RegistryError` naming the
known entries. Modules that register built-in entries can be listed at construction: they are
imported on the first lookup, so that importing a package stays cheap and free of import cycles.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class RegistryError(ValueError):
    """A name is unknown or registered twice; the message names it and the known entries."""


class Registry(Generic[T]):
    """Names -> classes of one kind (``"dataset"``, ``"model"``)."""

    def __init__(self, kind: str, builtin_modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self._builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: make `cls` available under ``cls.name``; a second class under the same
        name is an error (re-registering the same class, as a module reload does, is not)."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{cls.__module__}.{cls.__qualname__}: a registered {self.kind} needs a "
                                "non-empty class attribute `name`")
        existing = self._entries.get(name)
        if existing is not None and existing is not cls:
            raise RegistryError(f"{self.kind} name {name!r} is already registered by "
                                f"{existing.__module__}.{existing.__qualname__}")
        self._entries[name] = cls
        return cls

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load_builtin()
        return sorted(self._entries)

    def get(self, name: str, key: str | None = None) -> T:
        """The class registered as `name`; RegistryError naming the known entries otherwise (and the
        config `key` the name came from, when given)."""
        self._load_builtin()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._entries))
            where = f"{key}: got {name!r}" if key else f"unknown {self.kind} {name!r}"
            raise RegistryError(f"{where}; known {self.kind}s: {known}") from None

    def __contains__(self, name: object) -> bool:
        self._load_builtin()
        return name in self._entries

    def _load_builtin(self) -> None:
        for module in self._builtin_modules:
            importlib.import_module(module)
