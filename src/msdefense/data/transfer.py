"""Transfer sets: the images the KnockoffNets attacker owns and sends to the oracle.

Three sources (config ``transfer_sets.<name>.source``):

* ``photo_crops``: random square crops (side drawn uniformly in ``[crop_min, crop_max]`` px)
  of the natural photographs bundled with scikit-learn (``load_sample_images``), resized to the
  victim's resolution and converted to its channels (ITU-R 601 luminance for 1 channel).
  Natural images unrelated to the victim's task, as the paper's knowledge-limited transfer
  sets (CIFAR-100 → CIFAR-10); offline.
* ``heldout``: the in-distribution setting; the attacker holds a disjoint part of the victim's
  training split (fraction ``data.attacker_holdout``), which the victim never trains on.
* ``dataset``: the training split of another registered dataset (e.g. cifar100 for a cifar10
  victim), as in the papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from ..seeding import derive_seed
from .registry import DatasetSpec, get_dataset_spec
from .tensor_dataset import TensorImageDataset, normalise

TRANSFER_SOURCES = ("photo_crops", "heldout", "dataset")


def holdout_split(
    n: int, fraction: float, seed: int, val_fraction: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (victim part, attacker part, validation part).

    The attacker gets ``fraction`` of it, the validation part ``val_fraction`` (used for datasets
    without a validation split of their own), the victim the rest. The attacker part does not
    depend on ``val_fraction``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"data.attacker_holdout must be in [0, 1), got {fraction}")
    if not 0.0 <= val_fraction < 1.0 - fraction:
        raise ValueError(f"data.validation_fraction must be in [0, 1 - attacker_holdout), got {val_fraction}")
    order = np.random.default_rng(derive_seed(seed, "attacker-holdout")).permutation(n)
    n_att = int(round(fraction * n))
    n_val = int(round(val_fraction * n))
    return np.sort(order[n_att + n_val :]), np.sort(order[:n_att]), np.sort(order[n_att : n_att + n_val])


def _val_fraction(spec: DatasetSpec, val_fraction: float) -> float:
    """Datasets with their own validation split take nothing from the training split."""
    return 0.0 if "val" in spec.splits else val_fraction


def victim_training_set(
    spec: DatasetSpec, root: Path, holdout: float, seed: int, augment: bool, val_fraction: float = 0.1
) -> Dataset:
    """The victim's training data: its dataset's train split minus the attacker's holdout and,
    for datasets without a ``val`` split, minus the validation part (:func:`validation_set`)."""
    full = spec.loader(root, "train", augment, False)
    vf = _val_fraction(spec, val_fraction)
    if holdout == 0 and vf == 0:
        return full
    victim_idx, _, _ = holdout_split(len(full), holdout, seed, vf)
    return Subset(full, victim_idx.tolist())


def validation_set(
    spec: DatasetSpec, root: Path, holdout: float, seed: int, val_fraction: float = 0.1
) -> Dataset:
    """Labelled data for model selection (clones, MISLEADER members), never the test set.

    The dataset's own ``val`` split where it has one (digits); otherwise a fixed
    ``val_fraction`` of the training split that neither the victim nor the attacker's holdout
    contains (the original scripts selected on the test set; docs/deviations.md, Training and metrics).
    """
    if "val" in spec.splits:
        return spec.loader(root, "val", False, False)
    if val_fraction <= 0:
        raise ValueError(f"dataset {spec.name!r} has no validation split; set data.validation_fraction > 0")
    full = spec.loader(root, "train", False, False)
    _, _, val_idx = holdout_split(len(full), holdout, seed, val_fraction)
    return Subset(full, val_idx.tolist())


@cache
def _sample_photo_arrays() -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled photographs as decoded ``uint8`` arrays, read once per process (the
    job server reads them before it forks: :data:`msdefense.launch.WARM`). No torch operation
    here: a forking server must not start torch's thread pools."""
    from sklearn.datasets import load_sample_images  # lazy: importing sklearn costs a second per job

    return tuple(load_sample_images().images)


def sample_photos() -> list[torch.Tensor]:
    """scikit-learn's bundled photographs as ``[3, H, W]`` float tensors in [0, 1]."""
    return [torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255.0 for im in _sample_photo_arrays()]


def photo_crops(
    size: int, channels: int, image_size: int, crop_min: int, crop_max: int, seed: int
) -> torch.Tensor:
    """``size`` random crops in [0, 1], shape ``[size, channels, image_size, image_size]``."""
    if not 1 <= crop_min <= crop_max:
        raise ValueError(f"need 1 <= crop_min <= crop_max, got {crop_min}, {crop_max}")
    photos = sample_photos()
    limit = min(min(p.shape[1:]) for p in photos)
    if crop_max > limit:
        raise ValueError(f"crop_max={crop_max} exceeds the smallest photo side ({limit} px)")
    rng = np.random.default_rng(derive_seed(seed, "photo-crops"))
    which = rng.integers(len(photos), size=size)
    sides = rng.integers(crop_min, crop_max + 1, size=size)
    out = torch.empty(size, 3, image_size, image_size)
    for side in np.unique(sides):  # one batched resize per crop size, not per crop
        members = np.flatnonzero(sides == side)
        crops = []
        for i in members:
            photo = photos[which[i]]
            top = int(rng.integers(photo.shape[1] - side + 1))
            left = int(rng.integers(photo.shape[2] - side + 1))
            crops.append(photo[:, top : top + side, left : left + side])
        batch = torch.stack(crops)
        out[members] = F.interpolate(
            batch, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
    flips = torch.from_numpy(rng.random(size) < 0.5)
    out[flips] = out[flips].flip(-1)
    out = out.clamp(0, 1)
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        out = (out * weights).sum(1, keepdim=True)
    elif channels != 3:
        raise ValueError(f"photo_crops supports 1 or 3 channels, not {channels}")
    return out


def load_transfer_set(
    transfer: Mapping[str, Any],
    victim_dataset: str,
    root: Path,
    holdout: float,
    seed: int,
    augment: bool,
) -> Dataset:
    """The transfer set described by the config entry ``transfer`` for a victim of ``victim_dataset``.

    ``augment=False`` gives the deterministic images the oracle answers; ``augment=True`` the
    augmented views of the same images, in the same order, that the attacker trains on
    (as in Khaled et al. 2023: queries use the test transform, the adversary trains on augmented views).
    Labels are the source's labels where it has them (-1 for photo crops); attacks never use them.
    """
    spec = get_dataset_spec(victim_dataset)
    source = transfer["source"]
    if source == "photo_crops":
        images = photo_crops(
            int(transfer["size"]),
            spec.in_channels,
            spec.image_size,
            int(transfer.get("crop_min", 8)),
            int(transfer.get("crop_max", 96)),
            seed,
        )
        labels = torch.full((len(images),), -1, dtype=torch.long)
        return TensorImageDataset(normalise(images), labels, shift_pad=2 if augment else 0)
    if source == "heldout":
        if holdout <= 0:
            raise ValueError("transfer source 'heldout' needs data.attacker_holdout > 0")
        full = spec.loader(root, "train", augment, False)
        _, attacker_idx, _ = holdout_split(len(full), holdout, seed)
        return Subset(full, attacker_idx.tolist())
    if source == "dataset":
        other = get_dataset_spec(transfer["dataset"])
        data = other.loader(root, "train", augment, False)
        size = transfer.get("size")
        if size is not None and size < len(data):
            idx = np.random.default_rng(derive_seed(seed, "transfer-subset")).permutation(len(data))[:size]
            data = Subset(data, np.sort(idx).tolist())
        return data
    raise ValueError(f"unknown transfer source {source!r}; known: {', '.join(TRANSFER_SOURCES)}")
