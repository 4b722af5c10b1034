"""Datasets and transfer sets, looked up by name."""

from . import (
    digits,  # noqa: F401  (registers "digits")
    paper_specs,  # noqa: F401  (registers the paper datasets; readers load lazily)
)
from .registry import DATASETS, DatasetMissingError, DatasetSpec, get_dataset_spec
from .transfer import TRANSFER_SOURCES, load_transfer_set, validation_set, victim_training_set

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
