"""Image transforms of the paper datasets (Khaled et al. 2023, ``df/df_utils.py::load_data``).

Every transform maps a PIL image to a normalised float tensor ``[C, H, W]``:

* 32-px colour sets (cifar10, cifar100, svhn, gtsrb), mean = std = 0.5 per channel;
  train: HFlip, RandomCrop(32, padding=4); test/query: Resize((32, 32)).
  gtsrb (images of ~15–250 px) is resized to 32×32 *before* the crop: the original has no
  Resize there (it crashes below 24 px and takes random sub-crops of large images) — fixed here
  (docs/deviations.md, Data).
* mnist / fashionmnist (1 channel, mean = std = 0.5): Resize((32, 32)) [+ RandomCrop(32, padding=4)].
* cub200 (ImageNet mean/std): train RandomResizedCrop(224), HFlip; test Resize(256), CenterCrop(224).
* pascal (VOC mean/std of the original): train Resize((300, 300)), one of
  {ColorJitter(brightness 0.8–1.2), RandomGrayscale(0.25)}, HFlip(0.25), RandomRotation(25);
  test Resize(330), CenterCrop(300).

Queries to the oracle always use the deterministic test transform, as in the original.
"""

from __future__ import annotations

from collections.abc import Callable

from torchvision import transforms as T

Transform = Callable[..., object]

CIFAR_LIKE = ("cifar10", "cifar100", "svhn", "gtsrb")
GREYSCALE = ("mnist", "fashionmnist")
IMAGENET_LIKE = ("cub200",)
VOC_LIKE = ("pascal",)
TRANSFORM_NAMES = CIFAR_LIKE + GREYSCALE + IMAGENET_LIKE + VOC_LIKE

HALF_RGB = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
HALF_GREY = ((0.5,), (0.5,))
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# VOC 2012 statistics used by the original for pascal.
VOC_MEAN_STD = (
    (0.457342265910642, 0.4387686270106377, 0.4073427106250871),
    (0.26753769276329037, 0.2638145880487105, 0.2776826934044154),
)


def normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` of dataset ``name`` (as in Khaled et al. 2023 and Mazeika et al. 2022)."""
    _check(name)
    if name in CIFAR_LIKE:
        return HALF_RGB
    if name in GREYSCALE:
        return HALF_GREY
    if name in IMAGENET_LIKE:
        return IMAGENET_MEAN_STD
    return VOC_MEAN_STD


def train_transform(name: str, hflip: bool = True) -> Transform:
    """Training-time augmentation of ``name`` (the original's "train and not deterministic" transform).

    ``hflip`` keeps the original's horizontal flip of the 32-px sets (default ``True``); flipping
    digits (svhn) and traffic signs (gtsrb) is semantically questionable, so it can
    be switched off.  It has no effect on the other datasets.
    """
    _check(name)
    mean, std = normalisation(name)
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    if name in CIFAR_LIKE:
        head: list[Transform] = [T.Resize((32, 32))] if name == "gtsrb" else []  # the original has no Resize
        if hflip:
            head.append(T.RandomHorizontalFlip())
        return T.Compose([*head, T.RandomCrop(32, padding=4), *tail])
    if name in GREYSCALE:
        return T.Compose([T.Resize((32, 32)), T.RandomCrop(32, padding=4), *tail])
    if name in IMAGENET_LIKE:
        return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *tail])
    return T.Compose(
        [
            T.Resize((300, 300)),
            T.RandomChoice([T.ColorJitter(brightness=(0.8, 1.2)), T.RandomGrayscale(p=0.25)]),
            T.RandomHorizontalFlip(p=0.25),
            T.RandomRotation(25),
            *tail,
        ]
    )


def test_transform(name: str) -> Transform:
    """Deterministic query/test transform of ``name``."""
    _check(name)
    mean, std = normalisation(name)
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    if name in CIFAR_LIKE or name in GREYSCALE:
        return T.Compose([T.Resize((32, 32)), *tail])
    if name in IMAGENET_LIKE:
        return T.Compose([T.Resize(256), T.CenterCrop(224), *tail])
    return T.Compose([T.Resize(330), T.CenterCrop(300), *tail])


def image_transform(name: str, augment: bool) -> Transform:
    """``train_transform(name)`` if ``augment`` else ``test_transform(name)``."""
    return train_transform(name) if augment else test_transform(name)


def _check(name: str) -> None:
    if name not in TRANSFORM_NAMES:
        raise KeyError(f"no transforms for dataset {name!r}; known: {', '.join(TRANSFORM_NAMES)}")
