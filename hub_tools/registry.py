"""Plug-ins chosen by name (open-r1 style): generation backends, speech sources and pipeline stages.

A registry maps names to objects. Built-in entries may be registered lazily as "module:attribute"
strings, so the registry's module never imports its implementations (no import cycles, no heavy
imports until a plug-in is used); third-party plug-ins register with the `register` decorator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind; an unknown name raises `error` listing the available ones."""

    def __init__(self, kind: str, error: type[Exception] = KeyError):
        self.kind = kind  # what the entries are, for error messages ("backend", "source", ...)
        self.error = error  # the exception an unknown name raises
        self._entries: dict[str, T | str] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: make an object available under one or more names (a later one wins)."""

        def wrap(obj: T) -> T:
            for name in names:
                self._entries[name] = obj
            return obj

        return wrap

    def register_lazy(self, target: str, *names: str) -> None:
        """Register "package.module:attribute", imported the first time one of `names` is used."""
        for name in names:
            self._entries[name] = target

    def unregister(self, *names: str) -> None:
        """Forget `names` (a plug-in tried out in a test, then removed)."""
        for name in names:
            self._entries.pop(name, None)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise self.error(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            target = entry
            module, attr = target.split(":")
            entry = getattr(importlib.import_module(module), attr)
            for key, value in self._entries.items():  # resolve every alias of this target at once
                if value == target:
                    self._entries[key] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
