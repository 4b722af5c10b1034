"""Stage of ``prepare_dataset``: fetch a paper dataset into the data root (a local rule: compute
nodes often have no network)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class PrepareRequest:
    dataset: str
    root: str


def prepare_dataset(request: PrepareRequest) -> Path:
    """Download ``dataset`` into ``root`` (torchvision's layout, or the documented manual steps)."""
    from ..data.paper import prepare

    return prepare(request.dataset, Path(request.root))


@dataclass(frozen=True, kw_only=True)
class PrepareWeightsRequest:
    arch: str
    root: str


def prepare_weights(request: PrepareWeightsRequest) -> Path:
    """Download torchvision's ImageNet weights of ``arch`` into ``<root>/weights/`` (hash-checked)."""
    from ..pretrained import fetch_weights

    return fetch_weights(request.root, request.arch)
