"""The embedded default data: digits split, attacker hold-out, photo-crop transfer set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from msdefense.data import get_dataset_spec, load_transfer_set, victim_training_set
from msdefense.data.digits import split_indices
from msdefense.data.transfer import holdout_split, photo_crops, validation_set


def test_digits_split_is_fixed_disjoint_and_complete() -> None:
    parts = {s: split_indices(s) for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in parts.items()} == {"train": 1258, "val": 180, "test": 359}
    union = np.concatenate(list(parts.values()))
    assert len(np.unique(union)) == 1797
    np.testing.assert_array_equal(split_indices("test"), parts["test"])  # deterministic


def test_digits_images() -> None:
    spec = get_dataset_spec("digits")
    data = spec.loader(None, "test", False, False)
    x, y = data[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    labels = {int(data[i][1]) for i in range(len(data))}
    assert labels == set(range(10))


def test_holdout_is_disjoint_and_seeded() -> None:
    victim, attacker, val = holdout_split(1000, 0.3, seed=5)
    assert len(attacker) == 300 and len(victim) == 700 and len(val) == 0
    assert not set(victim) & set(attacker)
    np.testing.assert_array_equal(holdout_split(1000, 0.3, seed=5)[1], attacker)
    assert not np.array_equal(holdout_split(1000, 0.3, seed=6)[1], attacker)


def test_validation_part_is_disjoint_and_leaves_the_attacker_part_unchanged() -> None:
    victim, attacker, val = holdout_split(1000, 0.3, seed=5, val_fraction=0.1)
    assert (len(victim), len(attacker), len(val)) == (600, 300, 100)
    assert not (set(victim) & set(val)) and not (set(attacker) & set(val))
    np.testing.assert_array_equal(attacker, holdout_split(1000, 0.3, seed=5)[1])
    with pytest.raises(ValueError, match="validation_fraction"):
        holdout_split(1000, 0.3, seed=5, val_fraction=0.8)


def test_digits_validation_set_is_its_own_split() -> None:
    spec = get_dataset_spec("digits")
    val = validation_set(spec, None, 0.3, seed=0)
    assert len(val) == len(spec.loader(None, "val", False, False))
    # the digits victim keeps its whole (train minus holdout) split: the val split is separate
    assert len(victim_training_set(spec, None, 0.3, seed=0, augment=False, val_fraction=0.5)) == 881


def test_heldout_transfer_set_is_not_victim_training_data() -> None:
    spec = get_dataset_spec("digits")
    victim = victim_training_set(spec, None, 0.3, seed=0, augment=False)
    attacker = load_transfer_set({"source": "heldout"}, "digits", None, 0.3, seed=0, augment=False)
    assert len(victim) + len(attacker) == 1258
    v = torch.stack([victim[i][0] for i in range(len(victim))]).flatten(1)
    a = torch.stack([attacker[i][0] for i in range(len(attacker))]).flatten(1)
    assert torch.cdist(a, v).min() > 0  # no attacker image is among the victim's


def test_photo_crops_shape_range_and_determinism() -> None:
    grey = photo_crops(50, 1, 32, 8, 96, seed=1)
    rgb = photo_crops(50, 3, 32, 8, 96, seed=1)
    assert grey.shape == (50, 1, 32, 32) and rgb.shape == (50, 3, 32, 32)
    assert float(grey.min()) >= 0 and float(grey.max()) <= 1
    torch.testing.assert_close(grey, photo_crops(50, 1, 32, 8, 96, seed=1))
    assert not torch.equal(grey, photo_crops(50, 1, 32, 8, 96, seed=2))
    luminance = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(grey, luminance)
    assert grey.flatten(1).std(1).mean() > 0.02  # real image content, not flat patches


def test_photo_crops_rejects_crops_larger_than_photos() -> None:
    with pytest.raises(ValueError, match="crop_max"):
        photo_crops(5, 1, 32, 8, 1000, seed=0)


def test_augmented_transfer_views_keep_order() -> None:
    cfg = {"source": "photo_crops", "size": 20}
    plain = load_transfer_set(cfg, "digits", None, 0.3, 0, augment=False)
    aug = load_transfer_set(cfg, "digits", None, 0.3, 0, augment=True)
    assert len(plain) == len(aug) == 20
    for i in range(20):  # each augmented view is the same image shifted by at most 2 px
        a, b = plain[i][0], aug[i][0]
        assert any(
            torch.equal(torch.roll(a, (dy, dx), (1, 2))[:, 2:-2, 2:-2], b[:, 2:-2, 2:-2])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
