"""Datasets and transfer sets, looked up by name."""

from . import digits  # noqa: F401  (registers "digits")
from .registry import DATASETS, DatasetMissingError, DatasetSpec, get_dataset_spec
from .transfer import TRANSFER_SOURCES, load_transfer_set, validation_set, victim_training_set

try:  # the paper datasets' loaders (torchvision and folder layouts)
    from . import paper  # noqa: F401
except ImportError as exc:  # pragma: no cover - only while paper.py is being written
    if "paper" not in str(exc):
        raise

__all__ = [
    "DATASETS",
    "DatasetMissingError",
    "DatasetSpec",
    "TRANSFER_SOURCES",
    "get_dataset_spec",
    "load_transfer_set",
    "validation_set",
    "victim_training_set",
]
