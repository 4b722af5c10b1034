"""The one rule every registry here follows (datasets, architectures, defenses): a name is
filed once, and a second registration under the same name is an error."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TypeVar

T = TypeVar("T")


def file_under(table: MutableMapping[str, T], name: str, item: T, *, kind: str) -> T:
    """Put ``item`` in ``table`` under ``name``; refuse a name already taken. Returns ``item``."""
    if name in table:
        raise ValueError(f"{kind} {name!r} registered twice")
    table[name] = item
    return item
