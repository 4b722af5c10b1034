"""Dataset registry: every dataset the workflow can use is looked up here by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..registry import Registry

# loader(root, split, augment, download) -> Dataset yielding (image tensor [C, H, W], int label)
Loader = Callable[[Path, str, bool, bool], Dataset]


@dataclass(frozen=True)
class DatasetSpec:
    """What the workflow needs to know about a dataset.

    ``loader(root, split, augment, download)`` returns a map-style dataset of
    ``(normalised image tensor, label)``; ``split`` is ``"train"`` or ``"test"``;
    ``augment`` selects the training transform (otherwise the deterministic query/test
    transform); ``download`` allows fetching into ``root`` (only the ``prepare_dataset``
    rule sets it).  Missing files with ``download=False`` raise ``DatasetMissingError``.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    loader: Loader
    needs_download: bool = True
    description: str = ""
    splits: tuple[str, ...] = ("train", "test")


class DatasetMissingError(FileNotFoundError):
    """A dataset is not on disk and may not be downloaded here."""


#: the modules that register the built-in datasets (imported on the first lookup)
DATASET_MODULES = ("msdefense.data.digits", "msdefense.data.paper_specs")
DATASETS: Registry[DatasetSpec] = Registry(kind="dataset", modules=DATASET_MODULES)


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to :data:`DATASETS` (a name registered twice is an error)."""
    return DATASETS.file(spec.name, spec)


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None
