"""The one rule every registry here follows (datasets, architectures, defenses): a name is
filed once, and a second registration under the same name is an error.

A :class:`Registry` imports the modules that file its built-in entries on first lookup, so that
importing a registry imports no model or method code, and a job imports (and its code
fingerprint covers, msdefense.fingerprint) only what it uses. A registry that takes ``imported``
also resolves an import path, ``package.module:name``, to an entry defined outside the package
(docs/api.md, "A defense of your own").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def file_under(table: MutableMapping[str, T], name: str, item: T, *, kind: str) -> T:
    """Put ``item`` in ``table`` under ``name``; refuse a name already taken. Returns ``item``."""
    if name in table:
        raise ValueError(f"{kind} {name!r} registered twice")
    table[name] = item
    return item


def is_import_path(name: str) -> bool:
    """Whether ``name`` reads ``package.module:name`` (one colon, both sides non-empty)."""
    module, colon, attr = name.partition(":")
    return bool(colon and module and attr and ":" not in attr)


class ImportPathError(ValueError):
    """An import path (``package.module:name``) that does not give a registry entry."""


class Registry(Mapping[str, T]):
    """Name → item, filed by :meth:`file`; built-in entries come from modules imported on demand.

    ``modules``: a mapping name → the module that files it (one module imported per name looked
    up), or a sequence of modules that are all imported on the first lookup. ``imported``: turns
    the object an import path names into an entry (raising ``TypeError`` for one that is not), so
    that a name ``package.module:name`` is looked up by importing it; None: names only.
    """

    def __init__(
        self,
        *,
        kind: str,
        modules: Mapping[str, str] | Sequence[str] = (),
        imported: Callable[[Any, str], T] | None = None,
    ) -> None:
        self.kind = kind
        self.modules = modules
        self.imported = imported
        self._filed: dict[str, T] = {}
        self._loaded = False

    def _import(self, path: str) -> None:
        """File the entry the import path ``path`` names, once (:class:`ImportPathError` if it cannot)."""
        if path in self._filed or self.imported is None:
            return
        module, _, attr = path.partition(":")
        try:
            found = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise ImportPathError(
                f"{self.kind} {path!r}: cannot import {module!r} ({type(exc).__name__}: {exc}); "
                "put its package on PYTHONPATH or install it"
            ) from None
        except AttributeError:
            raise ImportPathError(f"{self.kind} {path!r}: module {module!r} has no {attr!r}") from None
        try:
            self._filed[path] = self.imported(found, path)
        except TypeError as exc:
            raise ImportPathError(f"{self.kind} {path!r}: {exc}") from None

    def file(self, name: str, item: T) -> T:
        """File ``item`` under ``name`` (a name filed twice is an error). Returns ``item``."""
        return file_under(self._filed, name, item, kind=self.kind)

    def _load(self, name: str | None = None) -> None:
        """Import the module of ``name`` when a mapping names it, else (once) every module."""
        if isinstance(self.modules, Mapping) and name in self.modules:
            if name not in self._filed:
                importlib.import_module(self.modules[name])
                if name not in self._filed:
                    raise RuntimeError(f"{self.modules[name]} files no {self.kind} {name!r}")
            return
        if not self._loaded:
            for module in self.modules.values() if isinstance(self.modules, Mapping) else self.modules:
                importlib.import_module(module)
            self._loaded = True

    def __getitem__(self, name: str) -> T:
        if is_import_path(name):
            self._import(name)
        self._load(name)
        return self._filed[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(self.modules, Mapping) and name in self.modules:
            return True
        if isinstance(name, str) and is_import_path(name) and self.imported is not None:
            self._import(name)
            return True
        self._load()
        return name in self._filed

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._filed))

    def __len__(self) -> int:
        self._load()
        return len(self._filed)
