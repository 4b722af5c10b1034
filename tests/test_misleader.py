"""MISLEADER members and ensemble (Cheng et al. 2025; docs/methods.md, MISLEADER): losses,
attacker-like augmentation, the effect of λ, soft voting through the oracle, storage."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from msdefense.data.tensor_dataset import TensorImageDataset
from msdefense.misleader import (
    Ensemble,
    MemberRecipe,
    MemberSpec,
    attacker_like,
    imitation_loss,
    member_loss,
    train_member,
)
from msdefense.models import build_model
from msdefense.oracle import victim_posteriors
from msdefense.training import SGDRecipe, prepare_model, train_classifier
from msdefense.victims import VictimInfo, read_victim, save_victim

K = 10


def _logits(n: int = 16, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, K, generator=g) * 3 for _ in range(4)]


def _images(n: int, seed: int = 0, channels: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 32, 32, generator=g) * 2 - 1


def _members(seed: int = 0) -> list[torch.nn.Module]:
    torch.manual_seed(seed)
    return [build_model(a, K, 1).eval() for a in ("lenet5fifth", "lenet5half", "lenet5fifth")]


def test_member_loss_at_lambda0_alpha1_is_pure_distillation():
    d, t, d_aug, a_aug = _logits()
    labels = torch.randint(0, K, (16,))
    for T in (1.0, 2.0, 6.0):
        spec = MemberSpec("lenet5fifth", lam=0.0, temperature=T, alpha=1.0)
        total, parts = member_loss(d, t, labels, d_aug, a_aug, spec)
        ref = F.kl_div(F.log_softmax(d / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T * T
        torch.testing.assert_close(total, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(parts["kd"] * T * T, ref, rtol=1e-5, atol=1e-6)


def test_member_loss_terms_and_kl_directions():
    d, t, d_aug, a_aug = _logits(seed=1)
    labels = torch.randint(0, K, (16,))
    spec = MemberSpec("lenet5fifth", lam=0.3, temperature=4.0, alpha=0.25)
    total, parts = member_loss(d, t, labels, d_aug, a_aug, spec)
    T = 4.0
    kd = F.kl_div(F.log_softmax(d / T, -1), F.softmax(t / T, -1), reduction="batchmean")  # KL(teacher‖member)
    div = F.kl_div(
        F.log_softmax(a_aug, -1), F.softmax(d_aug, -1), reduction="batchmean"
    )  # KL(member‖attacker)
    ce = F.cross_entropy(d, labels)
    torch.testing.assert_close(total, 0.25 * T * T * kd + 0.75 * ce - 0.3 * div, rtol=1e-5, atol=1e-6)
    # the member maximises exactly what the inner attacker minimises
    torch.testing.assert_close(imitation_loss(d_aug, a_aug), div, rtol=1e-5, atol=1e-6)
    # gradients reach the member's logits only
    d_aug = d_aug.clone().requires_grad_()
    a_aug = a_aug.clone().requires_grad_()
    member_loss(d, t, labels, d_aug, a_aug, spec)[0].backward()
    assert d_aug.grad is not None and d_aug.grad.abs().sum() > 0
    assert a_aug.grad is None


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("alpha", {"alpha": 1.5}),
        ("alpha", {"alpha": -0.1}),
        ("temperature", {"temperature": -2.0}),
        ("temperature", {"temperature": 0.0}),
        ("lam", {"lam": -0.01}),
        ("arch", {"arch": "no_such_net"}),
    ],
)
def test_bad_member_spec_names_the_field(field, kwargs):
    good = {"arch": "lenet5fifth", "lam": 0.1, "temperature": 2.0, "alpha": 0.3}
    with pytest.raises(ValueError, match=rf"MemberSpec\.{field}\b"):
        MemberSpec(**{**good, **kwargs})


def test_member_spec_and_recipe_from_config():
    spec = MemberSpec.from_config({"arch": "lenet5", "lambda": 0.05, "T": 4, "alpha": 0.9, "name": "x"})
    assert spec == MemberSpec("lenet5", 0.05, 4.0, 0.9) and isinstance(spec.temperature, float)
    with pytest.raises(ValueError, match="alpha"):
        MemberSpec.from_config({"arch": "lenet5", "lambda": 0.05, "T": 4})
    recipe = MemberRecipe.from_config({"epochs": 2, "batch_size": 8, "a_iter": 3, "unrelated": 1})
    assert (recipe.epochs, recipe.batch_size, recipe.a_iter, recipe.clip_norm) == (2, 8, 3, 5.0)
    with pytest.raises(ValueError, match="augmentation"):
        MemberRecipe(epochs=1, batch_size=8, augmentation="sepia")


@pytest.mark.parametrize(("channels", "kind"), [(1, "auto"), (1, "digits"), (3, "auto"), (3, "cifar")])
def test_attacker_like_shape_determinism_and_change(channels, kind):
    x = _images(12, channels=channels)
    a = attacker_like(x, torch.Generator().manual_seed(5), kind)
    b = attacker_like(x, torch.Generator().manual_seed(5), kind)
    c = attacker_like(x, torch.Generator().manual_seed(6), kind)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert (a - x).abs().mean() > 0.05  # every image moved
    assert ((a - x).flatten(1).abs().amax(1) > 0).all()
    assert a.min() >= -1 - 1e-6 and a.max() <= 1 + 1e-6  # stays in the normalised pixel range


@pytest.fixture(scope="module")
def toy_problem():
    """Ten smooth class prototypes + noise; a small LeNet teacher trained on them briefly."""
    g = torch.Generator().manual_seed(0)
    n = 192
    protos = F.interpolate(torch.rand(K, 1, 4, 4, generator=g) * 2 - 1, size=(32, 32), mode="bilinear")
    y = torch.arange(n) % K
    x = (protos[y] + 0.3 * torch.randn(n, 1, 32, 32, generator=g)).clamp(-1, 1)
    torch.manual_seed(0)
    teacher = build_model("lenet5fifth", K, 1)
    recipe = SGDRecipe(epochs=10, batch_size=32, lr=0.1)
    train_classifier(teacher, TensorImageDataset(x, y), {}, recipe, device=torch.device("cpu"), seed=0)
    teacher.eval()
    with torch.no_grad():
        yt = teacher(x).argmax(-1)
    return (
        teacher,
        TensorImageDataset(x[: n - 64], yt[: n - 64]),
        TensorImageDataset(x[n - 64 :], yt[n - 64 :]),
    )


def test_lambda_increases_member_attacker_divergence(toy_problem):
    teacher, train, val = toy_problem
    recipe = MemberRecipe(epochs=6, batch_size=32, lr=0.1, a_iter=2)
    kls = {}
    for lam in (0.0, 2.0):
        spec = MemberSpec("lenet5fifth", lam=lam, temperature=2.0, alpha=0.5)
        member, history, info = train_member(
            teacher,
            spec,
            recipe,
            train,
            val,
            num_classes=K,
            in_channels=1,
            device="cpu",
            seed=7,
            progress=False,
        )
        assert len(history) == recipe.epochs and info["steps_per_epoch"] == 4
        assert {"train_total", "train_kd", "train_ce", "train_div", "val_acc", "val_attack_kl"} <= set(
            history[0]
        )
        assert info["best_val_acc"] == max(h["val_acc"] for h in history)
        assert not member.training
        kls[lam] = history[-1]["val_attack_kl"]
    # λ = 2 vs 0 (same seed, same init and data order): about 5-15x across seeds on this toy
    assert kls[2.0] > 2 * kls[0.0], kls


def test_train_member_is_deterministic(toy_problem):
    teacher, train, val = toy_problem
    recipe = MemberRecipe(epochs=1, batch_size=16, a_iter=1)
    spec = MemberSpec("lenet5fifth", lam=0.5, temperature=2.0, alpha=0.3)
    kw = {"num_classes": K, "in_channels": 1, "device": "cpu", "seed": 3, "progress": False}
    runs = [train_member(teacher, spec, recipe, train, val, **kw) for _ in range(2)]
    for p, q in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values(), strict=True):
        assert torch.equal(p, q)
    drop_time = [{k: v for k, v in h.items() if k != "seconds"} for h in (runs[0][1][0], runs[1][1][0])]
    assert drop_time[0] == drop_time[1]


def test_ensemble_output_is_the_soft_vote_through_softmax():
    members = _members()
    ens = Ensemble(members).eval()
    x = _images(20)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x), -1) for m in members]).mean(0)
        out = ens(x)
    p = torch.softmax(out, -1)
    assert torch.all(p >= 0)
    torch.testing.assert_close(p.sum(-1), torch.ones(20), atol=1e-6, rtol=0)
    torch.testing.assert_close(p, mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(ens.probs(x).detach(), mean, atol=1e-7, rtol=0)
    torch.testing.assert_close(victim_posteriors(ens, x), mean, atol=1e-6, rtol=0)  # what the oracle answers


def _ensemble_info(archs: list[str], **extra: str) -> VictimInfo:
    return VictimInfo(
        kind="ensemble",
        arch=archs[0],
        dataset="digits",
        num_classes=K,
        in_channels=1,
        member_archs=tuple(archs),
        extra=extra,
    )


def test_save_load_roundtrip(tmp_path):
    ens = Ensemble(_members(seed=4)).eval()
    archs = ["lenet5fifth", "lenet5half", "lenet5fifth"]
    path = tmp_path / "ens" / "model.safetensors"
    save_victim(ens, path, _ensemble_info(archs, seed="4", note="x"))
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        keys = list(fh.keys())
    assert meta["kind"] == "ensemble" and json.loads(meta["member_archs"]) == archs
    assert all(k.startswith(("member0.", "member1.", "member2.")) for k in keys)
    loaded, info = read_victim(path)
    assert isinstance(loaded, Ensemble) and not loaded.training
    assert info.dataset == "digits" and info.extra["seed"] == "4" and info.extra["note"] == "x"
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in ens.state_dict().items())
    x = _images(8, seed=9)
    with torch.no_grad():
        assert torch.equal(loaded(x), prepare_model(ens, "cpu")(x))  # same weights, same layout
    assert not list(tmp_path.glob("ens/.*"))  # no temporary file left behind
    with pytest.raises(ValueError, match="member archs"):
        save_victim(ens, tmp_path / "bad.safetensors", _ensemble_info(archs[:2]))


def test_spec_is_frozen():
    spec = MemberSpec("lenet5fifth", 0.1, 2.0, 0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.lam = 1.0  # type: ignore[misc]
