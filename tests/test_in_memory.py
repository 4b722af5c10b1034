"""The in-memory readers give the items of torchvision's PIL transforms (small files in the real formats).

Pickle is used here only to write CIFAR's official batch format, which torchvision reads.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from msdefense.data import in_memory, paper
from msdefense.data import transforms as tf
from msdefense.data.registry import DATASETS

RNG = np.random.default_rng(3)


def write(root: Path, name: str, n: int = 6) -> None:
    """``n`` random images per split of ``name`` in its release's on-disk format."""
    if name == "cifar10":
        folder = root / "cifar10" / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for filename in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            flat = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            labels = RNG.integers(0, 10, size=n).tolist()
            (folder / filename).write_bytes(pickle.dumps({"data": flat, "labels": labels}))
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    elif name == "svhn":
        (root / "svhn").mkdir(parents=True)
        for split in ("train", "test"):
            x = RNG.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
            y = RNG.integers(1, 11, size=(n, 1)).astype(np.uint8)
            scipy.io.savemat(root / "svhn" / f"{split}_32x32.mat", {"X": x, "y": y})
    else:
        raw = root / name / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for prefix in ("train", "t10k"):
            images = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
                struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
            )
            labels = RNG.integers(0, 10, size=n).astype(np.uint8)
            (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


NAMES = ["cifar10", "svhn", "fashionmnist"]


def window(padded: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    w = padded[:, dy : dy + 32, dx : dx + 32]
    return w.flip(-1) if flip else w


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_items_equal_torchvision_transform(tmp_path: Path, name: str, split: str) -> None:
    """Without augmentation every item is bit-identical to the PIL path's (Resize, ToTensor, Normalize)."""
    write(tmp_path, name)
    ours = DATASETS[name].loader(tmp_path, split, False, False)
    reference = paper._torchvision_dataset(name, tmp_path, split, tf.test_transform(name), download=False)
    assert isinstance(ours, in_memory.Uint8Images) and len(ours) == len(reference) >= 6
    for i in range(len(ours)):
        (x, y), (x_ref, y_ref) = ours[i], reference[i]
        assert y == int(y_ref)
        assert x.dtype == torch.float32 and torch.equal(x, x_ref)


@pytest.mark.parametrize("name", NAMES)
def test_augmented_items_are_views_of_the_padded_image(tmp_path: Path, name: str) -> None:
    """With augmentation an item is a 32×32 window of the image zero-padded by 4 (before
    normalisation), flipped or not for the colour sets, and the windows vary."""
    write(tmp_path, name)
    plain = DATASETS[name].loader(tmp_path, "train", False, False)
    augmented = DATASETS[name].loader(tmp_path, "train", True, False)
    fill = (0 - torch.tensor(tf.normalisation(name)[0])) / torch.tensor(tf.normalisation(name)[1])
    image = plain[0][0]
    padded = fill.view(-1, 1, 1).expand(image.shape[0], 40, 40).clone()
    padded[:, 4:36, 4:36] = image
    views = {(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)}
    seen = set()
    torch.manual_seed(0)
    for _ in range(40):
        x, y = augmented[0]
        assert y == plain[0][1]
        match = [(dy, dx, flip) for dy, dx, flip in views if torch.equal(x, window(padded, dy, dx, flip))]
        assert match, "an augmented item is not a window of the padded image"
        seen.update(match)
    assert len({(dy, dx) for dy, dx, _ in seen}) > 5
    assert any(flip for *_, flip in seen) == (name in tf.CIFAR_LIKE)


def test_refuses_other_datasets() -> None:
    with pytest.raises(KeyError, match="gtsrb"):
        in_memory.from_torchvision("gtsrb", None, augment=False)
