"""In-memory image datasets (the embedded default's data) with cheap random-shift augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset


class TensorImageDataset(Dataset):
    """Normalised images ``[N, C, H, W]`` with integer labels.

    With ``shift_pad > 0`` each item is a random ``H×W`` crop of the image padded by
    ``shift_pad`` pixels of ``pad_value`` (the torchvision ``RandomCrop(size, padding)``
    augmentation, done by slicing a pre-padded tensor). ``hflip`` adds random horizontal flips.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        shift_pad: int = 0,
        hflip: bool = False,
        pad_value: float = -1.0,
    ) -> None:
        if images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"expected images [N,C,H,W] and N labels, got {tuple(images.shape)} / {len(labels)}"
            )
        self.images = images.float().contiguous()
        self.labels = labels.long()
        self.shift_pad = shift_pad
        self.hflip = hflip
        self._padded = F.pad(self.images, [shift_pad] * 4, value=pad_value) if shift_pad > 0 else self.images

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if self.shift_pad == 0 and not self.hflip:
            return self.images[index], int(self.labels[index])
        _, h, w = self.images.shape[1:]
        img = self._padded[index]
        if self.shift_pad > 0:
            dy, dx = torch.randint(0, 2 * self.shift_pad + 1, (2,)).tolist()
            img = img[:, dy : dy + h, dx : dx + w]
        if self.hflip and torch.rand(()) < 0.5:
            img = img.flip(-1)
        return img, int(self.labels[index])


def normalise(images01: Tensor, mean: float = 0.5, std: float = 0.5) -> Tensor:
    """Map images in [0, 1] to the (x - mean) / std input space of the victims."""
    return (images01 - mean) / std
