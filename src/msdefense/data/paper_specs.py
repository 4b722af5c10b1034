"""Registry entries of the paper datasets, without importing torchvision.

The readers live in :mod:`msdefense.data.paper`, imported on the first load: torchvision costs
seconds to import (it pulls in ``torch._dynamo``), and most workflow jobs of the embedded
default never touch a paper dataset.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from torch.utils.data import Dataset

from .registry import DatasetSpec, Loader, register

TORCHVISION_DATASETS = ("cifar10", "cifar100", "svhn", "mnist", "fashionmnist", "gtsrb")
PAPER_DATASETS = (*TORCHVISION_DATASETS, "cub200", "pascal")


def _lazy_loader(name: str) -> Loader:
    def load(root: Path, split: str, augment: bool, download: bool) -> Dataset:
        if download:  # fetch first (prepare_dataset's work), then read what is on disk
            importlib.import_module("msdefense.data.download").prepare(name, Path(root))
        reader = importlib.import_module("msdefense.data.paper")  # torchvision and PIL only when used
        return reader.load_paper_dataset(name, root, split, augment)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"Loader of {name!r} (reader in :mod:`msdefense.data.paper`)."
    return load


_SPECS = (
    ("cifar10", 10, 3, 32, "CIFAR-10 (torchvision; 50,000 train / 10,000 test)"),
    ("cifar100", 100, 3, 32, "CIFAR-100 (torchvision; 50,000 train / 10,000 test)"),
    ("svhn", 10, 3, 32, "SVHN (torchvision; 73,257 train / 26,032 test, 'extra' unused)"),
    ("mnist", 10, 1, 32, "MNIST (torchvision), resized to 32x32"),
    ("fashionmnist", 10, 1, 32, "Fashion-MNIST (torchvision), resized to 32x32"),
    ("gtsrb", 43, 3, 32, "GTSRB (torchvision; ~39,209 train / 12,630 test), resized to 32x32"),
    ("cub200", 200, 3, 224, "CUB-200-2011 (manual download; official split 5,994 / 5,794), 224x224 crops"),
    ("pascal", 20, 3, 300, "PASCAL VOC 2012 (train 5,717 / val 5,823), one label per image, 300x300"),
)
for _name, _classes, _channels, _size, _description in _SPECS:
    register(DatasetSpec(_name, _classes, _channels, _size, _lazy_loader(_name), True, _description))
