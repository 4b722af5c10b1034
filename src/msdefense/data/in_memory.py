"""The 32-px torchvision paper datasets held in memory as uint8 tensors.

torchvision's readers keep these datasets' pixels in memory already but decode every item
through PIL transforms: on Fashion-MNIST that costs about 190 µs an image, more than a LeNet-5
training step on it (``benchmarks/fashion_epoch.py``). Here each image is converted once to the
uint8 tensor the test transform's ``Resize((32, 32))`` gives, and an item is a slice of it,
divided by 255 and normalised with the same float32 operations as ``ToTensor`` + ``Normalize``:
bit-identical items without augmentation. With augmentation, ``RandomCrop(32, padding=4)``
(zero fill) is a slice of a zero-padded copy and ``RandomHorizontalFlip`` a flip of that slice:
flipping after the crop rather than before draws the same distribution of views, since the
shift is symmetric (:mod:`msdefense.data.transforms` lists the transforms).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .transforms import CIFAR_LIKE, normalisation, test_transform

IN_MEMORY = ("cifar10", "cifar100", "svhn", "mnist", "fashionmnist")
PADDING = 4  # RandomCrop(32, padding=4) of every in-memory dataset's training transform


class Uint8Images(Dataset):
    """Images ``[N, C, H, W]`` (uint8) with integer labels, normalised per item with ``mean``/``std``.

    ``pad > 0``: each item is a random ``H×W`` crop of the image zero-padded by ``pad`` pixels;
    ``hflip``: a random horizontal flip of it.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        pad: int = 0,
        hflip: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"expected uint8 images [N,C,H,W] and N labels, got {images.dtype} "
                f"{tuple(images.shape)} / {len(labels)}"
            )
        self.images = images.contiguous()
        self.labels = labels.long()
        self.pad, self.hflip = pad, hflip
        self._padded = F.pad(self.images, [pad] * 4) if pad > 0 else self.images
        self._mean = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
        self._std = torch.as_tensor(std, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        img = self._padded[index]
        if self.pad > 0:
            h, w = self.images.shape[2:]
            dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
            img = img[:, dy : dy + h, dx : dx + w]
        if self.hflip and torch.rand(()) < 0.5:
            img = img.flip(-1)
        x = img.to(torch.float32).div(255)
        return x.sub_(self._mean).div_(self._std), int(self.labels[index])


def _pixels(name: str, dataset: Any) -> tuple[Tensor, Tensor]:
    """uint8 ``[N, C, 32, 32]`` images and labels of a torchvision dataset built without a transform."""
    if name in ("cifar10", "cifar100"):
        # uint8 as released (a no-op); the rehearsal's fabricated batches hold plain ints
        images = torch.from_numpy(np.ascontiguousarray(dataset.data, dtype=np.uint8)).permute(0, 3, 1, 2)
        return images, torch.as_tensor(dataset.targets)
    if name == "svhn":
        return torch.from_numpy(np.ascontiguousarray(dataset.data)), torch.as_tensor(dataset.labels)
    # MNIST-like: 28×28 → 32×32 with the test transform's own Resize (PIL bilinear), once per image
    from PIL import Image

    resize = test_transform(name).transforms[0]  # type: ignore[attr-defined]
    data = dataset.data.numpy()
    images = np.zeros((len(data), 32, 32), np.uint8)
    for i, a in enumerate(data):  # once per dataset load (about 1 s for 60,000 images)
        images[i] = np.asarray(resize(Image.fromarray(a)))
    return torch.from_numpy(images)[:, None], torch.as_tensor(dataset.targets)


def from_torchvision(name: str, dataset: Any, augment: bool) -> Uint8Images:
    """The in-memory equal of ``dataset`` (a torchvision reader of ``name`` without a transform)
    under ``image_transform(name, augment)``."""
    if name not in IN_MEMORY:
        raise KeyError(f"{name!r} is not held in memory; in-memory datasets: {', '.join(IN_MEMORY)}")
    images, labels = _pixels(name, dataset)
    mean, std = normalisation(name)
    pad = PADDING if augment else 0
    return Uint8Images(images, labels, mean=mean, std=std, pad=pad, hflip=augment and name in CIFAR_LIKE)
