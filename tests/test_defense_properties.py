"""Properties every registered defense must satisfy, plus hand-computed values for ReverseSigmoid
(Lee et al. 2019), AdaptiveMisinformation (Kariyappa & Qureshi, CVPR 2020, with its misinformation
loss) and Random (Mazeika et al., ICML 2022), as docs/methods.md states them.

The generic tests are parametrised over the registry, so a newly registered method is covered
automatically: its auxiliary models (whatever ``aux_models(cfg)`` names) are tiny random
classifiers with ``features`` + ``fc`` on inputs ``[B, 1, 8, 8]``. A method that cannot be built
that way fails with a message saying so.
"""

from __future__ import annotations

import copy
import math
from functools import cache
from pathlib import Path

import pytest
import torch
import yaml
from hand_formulas import reverse_sigmoid_by_hand
from torch import nn

from msdefense.defenses import DEFENSES, build_defense, required_aux_models
from msdefense.defenses.adaptive_misinformation import AdaptiveMisinformation, misinformation_loss
from msdefense.defenses.random_perturbation import RandomPerturbation
from msdefense.defenses.reverse_sigmoid import ReverseSigmoid

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(DEFENSES)
EPS_BUDGET = {"Random", "MAD", "GRAD"}  # sweep value is an L1 budget
EXACT_AT_ZERO = {"None", "DCP", "ReverseSigmoid", "Random", "AdaptiveMisinformation"}
X_SHAPE = (1, 8, 8)
SWEEP = [0.0, 0.1, 0.5, 1.0, 1.5]


def sweep_for(name: str) -> list[float]:
    """SWEEP, or four whole values for a method whose sweep counts something (TopK's k, Rounding's d)."""
    method = DEFENSES.get(name)
    return method.example_sweep() if method is not None and method.integer_params else SWEEP


# ----------------------------------------------------------------------------------------------
# Generic construction


class TinyClassifier(nn.Module):
    """A small random CNN exposing ``features`` (conv + flatten) and a final Linear ``fc``."""

    def __init__(self, k: int, shape: tuple[int, int, int] = X_SHAPE, seed: int = 0) -> None:
        super().__init__()
        c, h, w = shape
        self.features = nn.Sequential(nn.Conv2d(c, 3, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.fc = nn.Linear(3 * h * w, k)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def tiny_aux_model(name: str, k: int, seed: int) -> nn.Module:
    """A flatten + linear misinformation model, a tiny CNN for any other name ("surrogate_e10", ...)."""
    if name.startswith("misinformation"):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(X_SHAPE), k))
    return TinyClassifier(k, seed=seed)


@cache
def _config_entries() -> dict[str, dict]:
    """The first defense entry of config/config.yaml for each method (its default options)."""
    entries = yaml.safe_load((ROOT / "config" / "config.yaml").read_text()).get("defenses") or {}
    out: dict[str, dict] = {}
    for entry in entries.values():
        out.setdefault(entry["method"], entry)
    return out


def config_for(name: str) -> dict:
    return copy.deepcopy(_config_entries().get(name, {"method": name}))


def make_defense(name: str, k: int, seed: int = 0):
    """Build ``name`` for ``digits`` with a tiny random classifier for every auxiliary model."""
    if name not in DEFENSES:
        pytest.skip(f"{name} is not registered yet")
    cfg = config_for(name)
    try:
        aux_names = required_aux_models(cfg)
        aux = {a: tiny_aux_model(a, k, seed=i + 1) for i, a in enumerate(aux_names)}
        return build_defense(cfg, "digits", aux, seed=seed)
    except Exception as err:  # any failure of the generic fixture is reported as such
        pytest.fail(
            f"defense {name!r} cannot be built by the generic test fixture (cfg={cfg}, tiny random "
            f"classifiers with .features/.fc on x {X_SHAPE} for its aux models): "
            f"{type(err).__name__}: {err}"
        )


def random_posteriors(n: int, k: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """softmax of Gaussian logits at a spread of temperatures (flat to nearly one-hot)."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([0.3, 1.0, 3.0, 10.0], dtype=torch.float64).repeat(n)[:n, None]
    return torch.softmax(scale * torch.randn(n, k, generator=g, dtype=torch.float64), -1).to(dtype)


def edge_posteriors(k: int, dtype=torch.float64) -> torch.Tensor:
    """One-hot rows, a uniform row, a tie for the top class, entries near 0 (1e-30)."""
    rows = [torch.eye(k, dtype=torch.float64)[i] for i in (0, k - 1)]
    rows.append(torch.full((k,), 1.0 / k, dtype=torch.float64))
    tie = torch.zeros(k, dtype=torch.float64)
    tie[:2] = 0.5
    rows.append(tie)
    tiny = torch.full((k,), 1e-30, dtype=torch.float64)
    tiny[0], tiny[-1] = 0.6, 0.4 - (k - 2) * 1e-30
    rows.append(tiny)
    return torch.stack(rows).to(dtype)


def queries(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *X_SHAPE, generator=torch.Generator().manual_seed(seed + 1000))


def batch(k: int, n_random: int = 12, dtype=torch.float64, seed: int = 0):
    y = torch.cat([random_posteriors(n_random, k, seed, dtype), edge_posteriors(k, dtype)])
    return queries(len(y), seed), y


# ----------------------------------------------------------------------------------------------
# Properties of every registered defense


@pytest.mark.parametrize("name", NAMES)
def test_builds_and_describes_itself(name: str) -> None:
    defense = make_defense(name, 10)
    assert defense.method == name
    assert defense.describe()["method"] == name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 10, 200])
@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_probability_vectors(name: str, k: int, dtype: torch.dtype) -> None:
    x, y = batch(k, n_random=8 if k == 200 else 16, dtype=dtype)
    values = sweep_for(name)
    out = make_defense(name, k).perturb(x, y, values)
    assert out.shape == (len(values), len(y), k)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    assert (out >= 0).all(), f"{name}: negative entry {out.min().item():.3g}"
    worst = (out.sum(-1) - 1).abs().max().item()
    assert worst <= 1e-5, f"{name}: rows sum to 1 ± {worst:.3g}"


#: the sweep value at which a method answers the posterior unchanged, where it is not 0
IDENTITY_AT = {"TopK": 1e6}  # k >= K classes: every class answered
NO_IDENTITY = {"Rounding"}  # d decimals always round (test_api_granularity.py)


@pytest.mark.parametrize("k", [2, 10, 200])
@pytest.mark.parametrize("name", [n for n in NAMES if n not in NO_IDENTITY])
def test_param_zero_returns_input(name: str, k: int) -> None:
    x, y = batch(k, n_random=8)
    out = make_defense(name, k).perturb(x, y, [IDENTITY_AT.get(name, 0.0), 1.0])[0]
    if name in EXACT_AT_ZERO:
        assert torch.equal(out, y), f"{name}: parameter 0 changed the input"
    else:
        torch.testing.assert_close(out, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("k", [2, 10, 200])
@pytest.mark.parametrize("name", sorted(EPS_BUDGET))
def test_l1_distance_within_budget(name: str, k: int) -> None:
    eps = [0.0, 0.05, 0.3, 1.0, 1.5, 2.0]
    x, y = batch(k, n_random=8)
    out = make_defense(name, k).perturb(x, y, eps)
    l1 = (out - y.unsqueeze(0)).abs().sum(-1)  # [E, B]
    budget = torch.tensor(eps, dtype=y.dtype).view(-1, 1)
    excess = (l1 - budget).max().item()
    assert excess <= 1e-5, f"{name}: L1 distance exceeds ε by {excess:.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_sweep_equals_single_calls(name: str) -> None:
    """One call over the sweep = one fresh defense (same seed) per sweep value."""
    k = 10
    x, y = batch(k, dtype=torch.float32)
    values = sweep_for(name)
    sweep = make_defense(name, k, seed=3).perturb(x, y, values)
    for i, p in enumerate(values):
        torch.testing.assert_close(sweep[i], make_defense(name, k, seed=3)(x, y, p))


@pytest.mark.parametrize("name", NAMES)
def test_output_only_methods_ignore_the_queries(name: str) -> None:
    x, y = batch(10, dtype=torch.float32)
    if make_defense(name, 10).uses_input:
        pytest.skip(f"{name} uses the queries")
    with_x = make_defense(name, 10, seed=3).perturb(x, y, sweep_for(name))
    torch.testing.assert_close(make_defense(name, 10, seed=3).perturb(None, y, sweep_for(name)), with_x)


BAD_POSTERIORS = {
    "nan": (torch.tensor([[0.5, float("nan"), 0.5]]), "NaN"),
    "inf": (torch.tensor([[float("inf"), 0.0, 0.0]]), "NaN or inf"),
    "negative": (torch.tensor([[1.2, -0.2, 0.0]]), "negative"),
    "not_normalised": (torch.tensor([[0.2, 0.3, 0.1]]), "sum to 1"),
    "positive_logits": (torch.tensor([[2.0, 3.0, 0.5]]), "sum to 1"),
    "logits": (torch.tensor([[1.3, -0.4, 2.2], [0.1, 0.2, -3.0]]), "negative"),
    "one_dimensional": (torch.tensor([0.2, 0.3, 0.5]), "shape"),
}


@pytest.mark.parametrize("bad", sorted(BAD_POSTERIORS))
@pytest.mark.parametrize("name", NAMES)
def test_invalid_posteriors_are_rejected(name: str, bad: str) -> None:
    probs, message = BAD_POSTERIORS[bad]
    x = queries(probs.shape[0] if probs.ndim == 2 else 1)
    with pytest.raises(ValueError, match=message):
        make_defense(name, 3).perturb(x, probs, [0.5])


@pytest.mark.parametrize("name", NAMES)
def test_negative_or_nan_parameter_rejected(name: str) -> None:
    x, y = batch(3, n_random=2)
    defense = make_defense(name, 3)
    for bad in ([-0.1], [0.2, float("nan")]):
        with pytest.raises(ValueError, match="non-negative"):
            defense.perturb(x, y, bad)


# ----------------------------------------------------------------------------------------------
# ReverseSigmoid (Lee et al. 2019; docs/methods.md)


RS_FIXED = [[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.05, 0.05, 0.9], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]
RS_BETAS = [0.0, 0.0025, 0.01, 0.08, 0.32, 0.64, 1.28]


@pytest.mark.parametrize("gamma", [0.1, 0.2])
@pytest.mark.parametrize("clip", [True, False])
def test_reverse_sigmoid_matches_hand_computation(clip: bool, gamma: float) -> None:
    y = torch.tensor(RS_FIXED, dtype=torch.float64)
    got = ReverseSigmoid(gamma=gamma, clip_odds=clip).perturb(None, y, RS_BETAS)
    for e, beta in enumerate(RS_BETAS):
        want = [reverse_sigmoid_by_hand(r, beta, gamma, clip) for r in RS_FIXED]
        torch.testing.assert_close(got[e], torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-12)


def test_reverse_sigmoid_known_value() -> None:
    # y = (0.7, 0.2, 0.1), β = 0.5, γ = 0.2, clipped odds: class 0 keeps 0.7 before renormalising,
    # classes 1, 2 gain β(1/2 − σ(0.2 ln odds)) with odds 1/4 and 1/9.
    got = ReverseSigmoid(gamma=0.2)(None, torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64), 0.5)[0]
    r1 = 0.5 * (1 / (1 + 0.25**-0.2) - 0.5)
    r2 = 0.5 * (1 / (1 + (1 / 9) ** -0.2) - 0.5)
    raw = torch.tensor([0.7, 0.2 - r1, 0.1 - r2], dtype=torch.float64)
    torch.testing.assert_close(got, raw / raw.sum())
    assert got[0] < 0.7 and got[2] > 0.1


def test_reverse_sigmoid_unclipped_lowers_the_top_class() -> None:
    y = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    clipped = ReverseSigmoid(clip_odds=True)(None, y, 0.3)[0]
    unclipped = ReverseSigmoid(clip_odds=False)(None, y, 0.3)[0]
    # unclipped: r_0 = β(σ(γ ln(7/3)) − 1/2) > 0 is subtracted from the top class before renormalising
    assert unclipped[0] < clipped[0]


def test_reverse_sigmoid_gamma_from_config() -> None:
    paper = {"method": "ReverseSigmoid", "gamma": 0.2, "gamma_by_dataset": {"cifar10": 0.1}}
    assert build_defense(paper, "cifar10").gamma == 0.1
    assert build_defense(paper, "cifar100").gamma == 0.2
    assert build_defense({"method": "ReverseSigmoid"}, "digits").gamma == 0.2
    assert build_defense({"method": "ReverseSigmoid", "clip_odds": False}, "digits").clip_odds is False
    assert build_defense(paper, "digits").describe() == {
        "method": "ReverseSigmoid",
        "gamma": 0.2,
        "clip_odds": True,
    }


# ----------------------------------------------------------------------------------------------
# AdaptiveMisinformation (Kariyappa & Qureshi, CVPR 2020; docs/methods.md)


def fixed_linear_model() -> nn.Linear:
    lin = nn.Linear(2, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.0]], dtype=torch.float64))
        lin.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    return lin


def am_by_hand(x: list[float], y: list[float], tau: float, nu: float) -> list[float]:
    w = [[1.0, -1.0], [0.5, 2.0], [-1.5, 0.0]]
    b = [0.1, -0.2, 0.3]
    z = [w[k][0] * x[0] + w[k][1] * x[1] + b[k] for k in range(3)]
    total = sum(math.exp(v) for v in z)
    mis = [math.exp(v) / total for v in z]
    t = nu * (max(y) - tau)
    a = 0.0 if t > 700 else 1 / (1 + math.exp(t))
    return [(1 - a) * yk + a * mk for yk, mk in zip(y, mis, strict=True)]


AM_X = [[0.5, -1.0], [2.0, 0.3], [-0.7, 0.1], [0.0, 0.0]]
AM_Y = [[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.05, 0.05, 0.9], [0.52, 0.48, 0.0]]
AM_TAUS = [0.0, 0.3, 0.5, 0.51, 0.53, 0.8, 1.0]


@pytest.mark.parametrize("nu", [10.0, 1000.0])
def test_adaptive_misinformation_matches_hand_computation(nu: float) -> None:
    am = AdaptiveMisinformation(fixed_linear_model(), nu=nu)
    x, y = torch.tensor(AM_X, dtype=torch.float64), torch.tensor(AM_Y, dtype=torch.float64)
    got = am.perturb(x, y, AM_TAUS)
    for e, tau in enumerate(AM_TAUS):
        # τ = 0 is exact (the original code leaks σ(−ν s) of misinformation there; docs/deviations.md)
        want = [am_by_hand(xi, yi, tau, nu) if tau > 0 else yi for xi, yi in zip(AM_X, AM_Y, strict=True)]
        torch.testing.assert_close(got[e], torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-12)


def test_adaptive_misinformation_gates_on_max_softmax() -> None:
    k = 10
    y = random_posteriors(400, k)
    x = queries(len(y))
    mis_model = TinyClassifier(k, seed=7)
    mis = torch.softmax(mis_model(x).detach().double(), -1)
    tau = 0.5
    out = AdaptiveMisinformation(mis_model)(x, y, tau)
    s = y.max(-1).values
    confident, ood = s > tau + 0.02, s < tau - 0.02  # gate ≤ σ(−20) ≈ 2e-9
    assert confident.sum() > 20 and ood.sum() > 20
    torch.testing.assert_close(out[confident], y[confident], rtol=0, atol=1e-7)
    torch.testing.assert_close(out[ood], mis[ood], rtol=0, atol=1e-7)


def test_adaptive_misinformation_one_forward_pass_in_eval_mode() -> None:
    k = 5
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, k))
    model.train()
    calls = []
    model.register_forward_hook(lambda module, inp, out: calls.append(out.requires_grad))
    x, y = queries(6), random_posteriors(6, k, dtype=torch.float32)
    am = AdaptiveMisinformation(model)
    out1 = am.perturb(x, y, [0.0, 0.2, 0.5, 0.9, 1.0])
    out2 = am.perturb(x, y, [0.0, 0.2, 0.5, 0.9, 1.0])
    assert calls == [False, False]  # one pass per batch, no autograd graph
    assert not model.training
    torch.testing.assert_close(out1, out2)  # eval mode: dropout off, deterministic


def test_adaptive_misinformation_needs_matching_inputs() -> None:
    k = 4
    y = random_posteriors(3, k)
    am = AdaptiveMisinformation(TinyClassifier(k))
    with pytest.raises(ValueError, match="needs the query images"):
        am.perturb(None, y, [0.5])
    with pytest.raises(ValueError, match="batch"):
        am.perturb(queries(2), y, [0.5])
    with pytest.raises(ValueError, match="misinformation model gives"):
        AdaptiveMisinformation(TinyClassifier(k + 1)).perturb(queries(3), y, [0.5])


def test_adaptive_misinformation_registry_entry() -> None:
    cfg = {"method": "AdaptiveMisinformation", "nu": 50.0}
    assert required_aux_models(cfg) == ("misinformation",)
    with pytest.raises(ValueError, match="misinformation"):
        build_defense(cfg, "digits")
    model = TinyClassifier(10)
    am = build_defense(cfg, "digits", {"misinformation": model})
    assert isinstance(am, AdaptiveMisinformation) and am.model is model and am.nu == 50.0
    assert am.uses_input


# ----------------------------------------------------------------------------------------------
# misinformation_loss (the DCP code's train_teacher.py --misinformation 1; docs/methods.md)


def test_misinformation_loss_hand_example() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    p = [math.exp(2) / (math.exp(2) + 1 + math.exp(-1)), math.exp(3) / (2 * math.exp(0.5) + math.exp(3))]
    want = sum(-math.log((1 - pi) + 1e-12) for pi in p) / 2
    assert misinformation_loss(logits, labels).item() == pytest.approx(want, rel=1e-12)


def test_misinformation_loss_matches_naive_formula_and_floor() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(64, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 7, (64,), generator=g)
    p_y = torch.softmax(logits, -1).gather(1, labels[:, None]).squeeze(1)
    naive = -torch.log((1 - p_y) + 1e-12).mean()
    torch.testing.assert_close(misinformation_loss(logits, labels), naive, rtol=1e-10, atol=1e-12)
    # p_y = 1 to machine precision: the floor caps the loss at −log 1e-12 and gradients stay finite
    extreme = torch.tensor([[100.0, -100.0, -100.0]], dtype=torch.float64, requires_grad=True)
    loss = misinformation_loss(extreme, torch.tensor([0]))
    assert loss.item() == pytest.approx(-math.log(1e-12 + 2 * math.exp(-200)), rel=1e-12)
    loss.backward()
    assert torch.isfinite(extreme.grad).all()


def test_misinformation_loss_training_lowers_true_class_probability() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 6, generator=g)
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # 3 classes
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    with torch.no_grad():  # start from a model that is good at the task
        model.weight.zero_()
        model.weight[:, :2] = torch.tensor([[-3.0, -3.0], [0.0, 0.0], [3.0, 3.0]])
        model.bias.zero_()

    def mean_p_true() -> float:
        with torch.no_grad():
            return torch.softmax(model(x), -1).gather(1, labels[:, None]).mean().item()

    before, losses = mean_p_true(), []
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    for _ in range(30):
        opt.zero_grad()
        loss = misinformation_loss(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert mean_p_true() < before / 2


def test_misinformation_loss_shape_checks() -> None:
    with pytest.raises(ValueError, match="logits"):
        misinformation_loss(torch.zeros(3), torch.zeros(3, dtype=torch.long))


# ----------------------------------------------------------------------------------------------
# Random (Mazeika et al., ICML 2022; docs/methods.md)


def drawn_classes(out: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Recover j from ỹ = (1 − ε/2) y + (ε/2) e_j (ε ≤ 2)."""
    return (out - (1 - eps / 2) * y).argmax(-1)


def test_random_is_deterministic_per_seed() -> None:
    y = random_posteriors(50, 10)
    a = RandomPerturbation(seed=5).perturb(None, y, SWEEP)
    b = RandomPerturbation(seed=5).perturb(None, y, SWEEP)
    c = RandomPerturbation(seed=6).perturb(None, y, SWEEP)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the generator advances per batch, and reset() rewinds it
    d = RandomPerturbation(seed=5)
    first, second = d.perturb(None, y, [1.0]), d.perturb(None, y, [1.0])
    assert not torch.equal(first, second)
    d.reset()
    assert torch.equal(d.perturb(None, y, [1.0]), first)
    assert build_defense({"method": "Random"}, "digits", seed=5).describe() == {"method": "Random", "seed": 5}


@pytest.mark.parametrize("k", [2, 3, 10, 200])
def test_random_never_picks_the_argmax_and_uses_one_class_per_query(k: int) -> None:
    y = torch.cat([random_posteriors(300, k), edge_posteriors(k)])
    eps = [0.2, 1.0, 1.5]
    out = RandomPerturbation(seed=0).perturb(None, y, eps)
    j = drawn_classes(out[1], y, 1.0)
    assert (j != y.argmax(-1)).all()
    if k == 2:
        assert torch.equal(j, 1 - y.argmax(-1))
    for e, v in enumerate(eps):  # the same j for every ε, and ‖ỹ − y‖₁ = ε (1 − y_j)
        want = (1 - v / 2) * y + (v / 2) * torch.nn.functional.one_hot(j, k).double()
        torch.testing.assert_close(out[e], want, rtol=0, atol=1e-12)
        l1 = (out[e] - y).abs().sum(-1)
        torch.testing.assert_close(l1, v * (1 - y.gather(1, j[:, None]).squeeze(1)))
        assert (l1 <= v + 1e-12).all()


def test_random_draws_are_uniform_over_the_other_classes() -> None:
    k, n, top = 5, 10_000, 2
    y = torch.full((n, k), 0.1, dtype=torch.float64)
    y[:, top] = 0.6
    j = drawn_classes(RandomPerturbation(seed=11)(None, y, 1.0), y, 1.0)
    counts = torch.bincount(j, minlength=k).double()
    assert counts[top] == 0
    expected = n / (k - 1)
    chi2 = ((counts[counts > 0] - expected) ** 2 / expected).sum().item()
    assert chi2 < 30.0, f"chi-square {chi2:.1f} on 3 degrees of freedom; counts {counts.tolist()}"
    # with varying argmax the draw matches draw_classes and stays uniform over the others
    y = random_posteriors(n, k, seed=2)
    j = RandomPerturbation(seed=11).draw_classes(y)
    offset = (j - y.argmax(-1)) % k  # 1..K−1, uniform
    counts = torch.bincount(offset, minlength=k).double()
    assert counts[0] == 0
    chi2 = ((counts[1:] - expected) ** 2 / expected).sum().item()
    assert chi2 < 30.0, f"chi-square {chi2:.1f}; counts {counts.tolist()}"


def test_random_clamps_large_budgets() -> None:
    y = random_posteriors(20, 6)
    out = RandomPerturbation(seed=0).perturb(None, y, [1.0, 2.0, 3.0, 10.0])
    j = drawn_classes(out[0], y, 1.0)
    onehot = torch.nn.functional.one_hot(j, 6).double()
    for e in (1, 2, 3):  # α = min(ε/2, 1) = 1: ỹ = e_j
        assert torch.equal(out[e], onehot)
    assert (out >= 0).all()


def test_random_rejects_a_single_class() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        RandomPerturbation().perturb(None, torch.ones(3, 1), [0.5])
