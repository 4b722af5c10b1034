"""scikit-learn's bundled handwritten digits as the embedded, offline victim dataset.

1,797 real 8×8 grey-level digits (UCI optdigits, values 0..16) are scaled to [0, 1], resized
to 32×32 (bilinear) and normalised with mean = std = 0.5, the input space of the MNIST
configurations of both papers. A fixed seeded permutation (independent of the experiment seed,
so every experiment sees the same split) gives 70% train, 10% validation and 20% test.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .registry import DatasetSpec, register
from .tensor_dataset import TensorImageDataset, normalise

SPLIT_SEED = 20231
FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


@lru_cache(maxsize=1)
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All digits as normalised ``[1797, 1, 32, 32]`` float tensors and their labels."""
    from sklearn.datasets import load_digits  # lazy: importing sklearn costs a second per job

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    return normalise(images), torch.from_numpy(bunch.target.astype(np.int64))


def split_indices(split: str) -> np.ndarray:
    """Indices of ``split`` (train / val / test) in the fixed seeded split."""
    if split not in FRACTIONS:
        raise ValueError(f"digits has splits {sorted(FRACTIONS)}, not {split!r}")
    n = len(digits_tensors()[1])
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test, n_val = round(FRACTIONS["test"] * n), round(FRACTIONS["val"] * n)
    bounds = {"test": (0, n_test), "val": (n_test, n_test + n_val), "train": (n_test + n_val, n)}
    lo, hi = bounds[split]
    return np.sort(order[lo:hi])


def load_digits_split(root: Path, split: str, augment: bool, download: bool) -> Dataset:
    """Loader of the ``digits`` dataset (``root`` and ``download`` are unused: it ships with sklearn)."""
    images, labels = digits_tensors()
    idx = torch.from_numpy(split_indices(split))
    return TensorImageDataset(images[idx], labels[idx], shift_pad=2 if augment else 0)


register(
    DatasetSpec(
        name="digits",
        num_classes=10,
        in_channels=1,
        image_size=32,
        loader=load_digits_split,
        needs_download=False,
        description="scikit-learn's bundled 8x8 handwritten digits, resized to 32x32 (offline)",
        splits=("train", "val", "test"),
    )
)
