"""Stacked training (msdefense.stacked) against the one-model-at-a-time loop it replaces."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from msdefense.data.tensor_dataset import TensorImageDataset
from msdefense.models import build_model
from msdefense.stacked import distill_stacked, stackable
from msdefense.training import BestOnValidation, SGDRecipe, distill

RECIPE = SGDRecipe(epochs=3, batch_size=16, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


def _data(n: int = 96) -> tuple[TensorImageDataset, TensorImageDataset, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 32, 32, generator=gen) * 2 - 1
    labels = torch.randint(0, 10, (n,), generator=gen)
    train = TensorImageDataset(images, labels, shift_pad=2)  # random shifts: the global stream matters
    val = TensorImageDataset(images[:40], labels[:40])
    targets = [torch.softmax(torch.randn(n, 10, generator=gen) * s, -1) for s in (0.5, 2.0, 4.0)]
    return train, val, targets


def _fresh(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("lenet5", 10, 1)


def test_stacked_clones_match_clones_trained_one_by_one() -> None:
    train, val, targets = _data()
    looped, looped_hist, looped_sel = [], [], []
    for t in targets:
        model = _fresh(3).double()
        torch.manual_seed(11)  # the augmentation stream, as each per-value run reseeds it
        selector = BestOnValidation(_Double(val), torch.device("cpu"))
        looped_hist.append(distill(model, _Double(train), t.double(), RECIPE, device=torch.device("cpu"), seed=5,
                                   evaluate=selector))  # fmt: skip
        looped.append(model)
        looped_sel.append(selector)
    stacked = [_fresh(3).double() for _ in targets]
    selectors = [BestOnValidation(_Double(val), torch.device("cpu"))
                 for _ in targets]  # fmt: skip
    torch.manual_seed(11)
    hists = distill_stacked(stacked, _Double(train), [t.double() for t in targets], RECIPE,
                            device=torch.device("cpu"), seed=5, evaluate=selectors)  # fmt: skip
    for a, b in zip(looped, stacked, strict=True):
        for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(pb, pa, rtol=1e-9, atol=1e-11, msg=name)
    for ha, hb in zip(looped_hist, hists, strict=True):
        for ra, rb in zip(ha, hb, strict=True):
            for key in ("train_loss", "train_acc", "val_acc", "lr"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-9, abs=1e-12), key
    assert [s.best_step for s in selectors] == [s.best_step for s in looped_sel]
    # the clones learnt from different answers: they differ from each other
    assert not torch.allclose(stacked[0].fc2.weight, stacked[2].fc2.weight)


def test_models_with_buffers_are_not_stackable() -> None:
    assert stackable(build_model("lenet5", 10, 1))
    assert not stackable(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    with pytest.raises(ValueError, match="batch-norm"):
        distill_stacked([nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))], *_data()[:1], [torch.ones(96, 10)],
                        RECIPE, device=torch.device("cpu"), seed=0)  # fmt: skip


class _Double(torch.utils.data.Dataset):
    """A dataset's images in float64 (the comparison at double precision)."""

    def __init__(self, base: TensorImageDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x.double(), y


def test_stacked_clones_stop_each_on_its_own_plateau_as_one_by_one() -> None:
    """With a patience every clone of the stack has its own rate and stop epoch (a stopped clone
    no longer moves), and each equals the clone trained alone to its own plateau."""
    recipe = SGDRecipe(epochs=12, batch_size=16, lr=0.05, patience=1, lr_decays=1, warmup_epochs=1)
    train, val, targets = _data()
    looped, looped_hist = [], []
    for t in targets:
        model = _fresh(3).double()
        torch.manual_seed(11)
        selector = BestOnValidation(_Double(val), torch.device("cpu"))
        looped_hist.append(distill(model, _Double(train), t.double(), recipe, device=torch.device("cpu"), seed=5,
                                   evaluate=selector))  # fmt: skip
        looped.append(model)
    stacked = [_fresh(3).double() for _ in targets]
    selectors = [BestOnValidation(_Double(val), torch.device("cpu")) for _ in targets]
    torch.manual_seed(11)
    hists = distill_stacked(stacked, _Double(train), [t.double() for t in targets], recipe,
                            device=torch.device("cpu"), seed=5, evaluate=selectors)  # fmt: skip
    lengths = [len(h) for h in looped_hist]
    assert len(set(lengths)) > 1, lengths  # the clones stop at different epochs: the case under test
    assert [len(h) for h in hists] == lengths
    for a, b in zip(looped, stacked, strict=True):
        for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(pb, pa, rtol=1e-9, atol=1e-11, msg=name)
    for ha, hb in zip(looped_hist, hists, strict=True):
        assert hb[-1]["stop_reason"] == ha[-1]["stop_reason"]
        for ra, rb in zip(ha, hb, strict=True):
            for key in ("train_loss", "val_acc", "lr"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-9, abs=1e-12), key
