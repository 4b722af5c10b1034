"""Datasets and transfer sets, looked up by name."""

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
