"""Stage of ``prepare_dataset``: fetch a paper dataset into the data root (a local rule: compute
nodes often have no network)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class PrepareRequest:
    dataset: str
    root: str
    sample_images: int = 0  # a rehearsal: fabricate this many images per split instead


def prepare_dataset(request: PrepareRequest) -> Path:
    """Download ``dataset`` into ``root`` (torchvision's layout, or the documented manual steps)."""
    from ..data.download import prepare

    if request.sample_images:
        from ..data.samples import write_sample

        return write_sample(request.dataset, Path(request.root), images=request.sample_images)
    return prepare(request.dataset, Path(request.root))


@dataclass(frozen=True, kw_only=True)
class PrepareWeightsRequest:
    arch: str
    root: str


def prepare_weights(request: PrepareWeightsRequest) -> Path:
    """Download torchvision's ImageNet weights of ``arch`` into ``<root>/weights/`` (hash-checked)."""
    from ..pretrained import fetch_weights

    return fetch_weights(request.root, request.arch)
