"""GRAD (GRAD², Mazeika et al., ICML 2022) and MAD (Orekondy et al., ICLR 2020; docs/methods.md):
exact LP solver, closed-form scores, projections, contract.

The slow per-example references here are deliberately minimal transcriptions of the definitions
(autograd per class, per-row loops); the package code must agree with them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

from msdefense.defenses import build_defense, required_aux_models
from msdefense.defenses.grad import GRAD
from msdefense.defenses.mad import MAD, alternating_projections
from msdefense.defenses.simplex import linear_min_simplex_l1, project_l1_ball, project_simplex
from msdefense.oracle import Oracle

EPS = [0.0, 0.05, 0.7, 2.0]


def random_posteriors(n: int, k: int, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, k, generator=g, dtype=torch.float64), -1)


def lp_optimum(y: np.ndarray, d: np.ndarray, eps: float) -> float:
    """min ⟨d, ỹ⟩ s.t. ỹ ≥ 0, Σỹ = 1, Σ s ≤ ε, −s ≤ ỹ − y ≤ s (variables [ỹ, s]).

    ε gets 1e-10 of slack (with ε = 0 a row summing to 1 ± 1e-16 is infeasible); HiGHS presolve is
    off (it declares tiny-budget cases with K = 200 infeasible) and its feasibility tolerances are
    tightened from 1e-7 (with them its optimum overshoots the L1 budget by ~1e-6 at K = 200).
    """
    k = len(y)
    eye = np.eye(k)
    a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, k)), np.ones((1, k))]])
    b_ub = np.concatenate([y, -y, [eps + 1e-10]])
    a_eq = np.concatenate([np.ones(k), np.zeros(k)])[None]
    res = linprog(
        np.concatenate([d, np.zeros(k)]),
        a_ub,
        b_ub,
        a_eq,
        [1.0],
        bounds=(0, None),
        method="highs",
        options={
            "presolve": False,
            "primal_feasibility_tolerance": 1e-10,
            "dual_feasibility_tolerance": 1e-10,
        },
    )
    assert res.status == 0, res.message
    return float(res.fun)


def assert_feasible(out: torch.Tensor, y: torch.Tensor, eps, atol: float = 1e-12) -> None:
    eps = torch.as_tensor(eps, dtype=out.dtype).view(-1, *([1] * (out.ndim - 1)))[..., 0]
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones_like(out.sum(-1)), atol=atol, rtol=0)
    assert ((out - y).abs().sum(-1) <= eps + atol).all()


def check_against_linprog(y: torch.Tensor, d: torch.Tensor, eps: list[float]) -> None:
    out = linear_min_simplex_l1(y, d, torch.tensor(eps, dtype=y.dtype))
    assert out.shape == (len(eps), *y.shape)
    assert_feasible(out, y.unsqueeze(0), eps, atol=1e-9)
    ours = (out * d).sum(-1)
    for e, value in enumerate(eps):
        for i in range(len(y)):
            best = lp_optimum(y[i].numpy(), d[i].numpy(), value)
            assert abs(ours[e, i].item() - best) <= 1e-7, (e, i, ours[e, i].item(), best)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_grad_solver_equals_linprog_optimum(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    y = random_posteriors(6, k, seed=k)
    d = torch.randn(6, k, generator=g, dtype=torch.float64)
    d[0] = torch.randint(0, 2, (k,), generator=g).double()  # tied scores
    check_against_linprog(y, d, EPS)


@pytest.mark.parametrize(
    "y",
    [
        [[0.0, 1.0, 0.0, 0.0]],  # one-hot
        [[0.25, 0.25, 0.25, 0.25]],  # uniform
        [[1e-30, 1 - 2e-30, 1e-30, 0.0]],  # denormal-ish entries
        [[0.3, 0.7]],  # K = 2
    ],
)
def test_grad_solver_edge_cases(y: list[list[float]]) -> None:
    y_t = torch.tensor(y, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        check_against_linprog(y_t, torch.randn(y_t.shape, generator=g, dtype=torch.float64), EPS)


def test_grad_solver_many_classes_and_budgets() -> None:
    y = random_posteriors(2, 200, seed=3, scale=5.0)
    d = torch.randn(2, 200, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    check_against_linprog(y, d, [0.0, 0.3, 1.9])


def test_grad_solver_structure() -> None:
    y = torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    d = torch.tensor([[3.0, -1.0, 0.0, 2.0]], dtype=torch.float64)  # c0 = 1; donors 0, 3, 2
    out = linear_min_simplex_l1(y, d, torch.tensor([0.0, 0.1, 0.4, 2.0], dtype=torch.float64))[:, 0]
    expected = [[0.1, 0.2, 0.3, 0.4], [0.05, 0.25, 0.3, 0.4], [0.0, 0.4, 0.3, 0.3], [0.0, 1.0, 0.0, 0.0]]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15)
    assert out[0].equal(y[0]) and out[-1][0] == 0  # ε = 0 exact; whole entries taken are exactly 0


def bisect_threshold(a: torch.Tensor, radius: float) -> float:
    lo, hi = float(a.min()) - radius - 1, float(a.max())
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (a - mid).clamp_min(0).sum() > radius else (lo, mid)
    return (lo + hi) / 2


def test_project_simplex_against_bisection() -> None:
    v = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    w = project_simplex(v)
    for row, out in zip(v.reshape(-1, 7), w.reshape(-1, 7), strict=True):
        theta = bisect_threshold(row, 1.0)
        torch.testing.assert_close(out, (row - theta).clamp_min(0), rtol=0, atol=1e-12)
    y = random_posteriors(3, 6)
    torch.testing.assert_close(project_simplex(y), y, rtol=0, atol=1e-15)
    torch.testing.assert_close(project_simplex(torch.tensor([2.0, 0.0])), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(project_simplex(torch.tensor([0.5, 0.5, 2.0])), torch.tensor([0.0, 0.0, 1.0]))


def test_project_l1_ball_against_bisection() -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.randn(6, 5, generator=g, dtype=torch.float64)
    c = torch.randn(6, 5, generator=g, dtype=torch.float64)
    radius = torch.tensor([0.0, 0.1, 0.5, 1.0, 3.0, 100.0], dtype=torch.float64)
    w = project_l1_ball(v, c, radius)
    for i in range(6):
        z = v[i] - c[i]
        if z.abs().sum() <= radius[i]:
            assert w[i].equal(v[i])
            continue
        theta = bisect_threshold(z.abs(), float(radius[i]))
        torch.testing.assert_close(w[i], c[i] + z.sign() * (z.abs() - theta).clamp_min(0), rtol=0, atol=1e-12)
        assert (w[i] - c[i]).abs().sum() <= radius[i] + 1e-12
    torch.testing.assert_close(w[0], c[0])  # radius 0 -> the centre
    torch.testing.assert_close(
        project_l1_ball(torch.tensor([3.0, 0.0]), torch.zeros(2), 1.0), torch.tensor([1.0, 0.0])
    )


class Tiny(nn.Module):
    """Conv + BN + ReLU + pooling + two Linear layers (the last one is the head)."""

    def __init__(self, k: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2, 3, 3),
            nn.BatchNorm2d(3),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.hidden = nn.Linear(3, 5)
        self.fc = nn.Linear(5, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.hidden(self.body(x))))


def tiny_model(seed: int = 0, k: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    model = Tiny(k).double()
    bn = model.body[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def inputs(b: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 2, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def flat_grad(output: torch.Tensor, params: list[nn.Parameter], **kw) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(output, params, **kw)])


def grad_scores_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: str) -> torch.Tensor:
    """d_ik = (1/B) ⟨∇_θ log p(k|x_i), t⟩ with per-example, per-class autograd."""
    params = list(model.parameters())
    b, k = y.shape
    if target == "all_ones":
        t = -torch.ones(sum(p.numel() for p in params), dtype=x.dtype)
    else:
        t = flat_grad((y * torch.log_softmax(model(x), -1)).sum() / b, params)
    d = torch.zeros(b, k, dtype=x.dtype)
    for i in range(b):
        for c in range(k):
            d[i, c] = flat_grad(torch.log_softmax(model(x[i : i + 1]), -1)[0, c], params) @ t / b
    return d


def grad_scores_double_backprop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: str
) -> torch.Tensor:
    """The original's route: g(ỹ) with create_graph, J = ⟨g(ỹ), t⟩, d = ∂J/∂ỹ at ỹ = y."""
    params = list(model.parameters())
    y_tilde = y.clone().requires_grad_()
    g = flat_grad((y_tilde * torch.log_softmax(model(x), -1)).sum(1).mean(0), params, create_graph=True)
    t = -torch.ones_like(g) if target == "all_ones" else g.detach()
    return torch.autograd.grad(g @ t, y_tilde)[0]


@pytest.mark.parametrize("target", ["all_ones", "min_ip"])
def test_grad_jvp_scores_match_autograd_definition(target: str) -> None:
    model, x = tiny_model(), inputs()
    y = random_posteriors(5, 4, seed=2)
    ours = GRAD(model, target).scores(x, y)
    torch.testing.assert_close(ours, grad_scores_reference(model, x, y, target), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(ours, grad_scores_double_backprop(model, x, y, target), rtol=1e-9, atol=1e-12)
    assert not any(p.grad is not None for p in model.parameters())


class Untraceable(Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 1e9:  # data-dependent branch: torch.fx cannot trace it
            x = -x
        return super().forward(x)


@pytest.mark.parametrize("target", ["all_ones", "min_ip"])
def test_grad_batchnorm_folding_and_fallback(target: str) -> None:
    model, x = tiny_model(), inputs()
    y = random_posteriors(5, 4, seed=2)
    folded, plain = GRAD(model, target), GRAD(model, target, fold_bn=False)
    assert folded.describe()["folded_batchnorm"] == 1 and plain.describe()["folded_batchnorm"] == 0
    torch.testing.assert_close(folded.scores(x, y), plain.scores(x, y), rtol=1e-10, atol=1e-13)
    torch.manual_seed(0)
    other = Untraceable().double().eval()
    fallback = GRAD(other, target)
    assert fallback.describe()["folded_batchnorm"] == 0
    torch.testing.assert_close(
        fallback.scores(x, y), grad_scores_reference(other, x, y, target), rtol=1e-9, atol=1e-12
    )


def test_grad_perturb_is_the_lp_solution_for_its_scores() -> None:
    model, x = tiny_model(), inputs()
    y = random_posteriors(5, 4, seed=5)
    eps = torch.tensor([0.0, 0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    defense = GRAD(model, "ALL-ONES")
    out = defense.perturb(x, y, eps)
    torch.testing.assert_close(out, linear_min_simplex_l1(y, defense.scores(x, y), eps), rtol=0, atol=0)
    assert out[0].equal(y)


def mad_cosines_reference(model: Tiny, x: torch.Tensor, y: torch.Tensor, with_bias: bool) -> torch.Tensor:
    """cos(G^T e_k, G^T y) with G the explicit per-class fc gradients of one example at a time."""
    params = [model.fc.weight, model.fc.bias] if with_bias else [model.fc.weight]
    b, k = y.shape
    cos = torch.zeros(b, k, dtype=x.dtype)
    for i in range(b):
        logp = torch.log_softmax(model(x[i : i + 1]), -1)[0]
        jac = torch.stack([flat_grad(logp[c], params, retain_graph=True) for c in range(k)])  # [K, P]
        v = jac.T @ y[i]
        for c in range(k):
            cos[i, c] = torch.nn.functional.cosine_similarity(jac[c], v, dim=0)
    return cos


@pytest.mark.parametrize("variant", ["simplified", "original"])
def test_mad_gram_cosines_match_explicit_fc_gradients(variant: str) -> None:
    model, x = tiny_model(seed=3, k=6), inputs(seed=4)
    y = random_posteriors(5, 6, seed=6)
    ours = MAD(model, variant).cosines(x, y)
    want = mad_cosines_reference(model, x, y, with_bias=variant == "simplified")
    torch.testing.assert_close(ours, want, rtol=1e-9, atol=1e-12)


def test_mad_simplified_matches_line_search_by_hand() -> None:
    model, x = tiny_model(seed=3, k=6), inputs(seed=4)
    y = random_posteriors(5, 6, seed=6, scale=1.0)
    eps = [0.0, 0.2, 1.0, 2.0]
    out = MAD(model).perturb(x, y, eps)
    cos = mad_cosines_reference(model, x, y, with_bias=True)
    for i in range(5):
        k_star = max(range(6), key=lambda c: (1 - cos[i, c].item(), c))  # ties -> last k
        for e, value in enumerate(eps):
            alpha = min(max(value / (2 * (1 - y[i, k_star].item())), 0.0), 1.0)
            want = (1 - alpha) * y[i]
            want[k_star] += alpha
            torch.testing.assert_close(out[e, i], want, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[-1], torch.nn.functional.one_hot(out[-1].argmax(-1), 6).double())  # α = 1


def test_mad_tie_breaking() -> None:
    # y = p makes v = 0: every cosine is 0 and all targets tie -> last (paper code) / first (bb_mad).
    model, x = tiny_model(seed=3, k=6), inputs(seed=4)
    with torch.no_grad():
        p = torch.softmax(model(x), -1)
    assert (MAD(model, "simplified").target_class(x, p) == 5).all()
    assert (MAD(model, "original").target_class(x, p) == 0).all()


def test_alternating_projections_match_per_row_loop_and_constraints() -> None:
    y = random_posteriors(6, 5, seed=8, scale=2.0)
    target = torch.nn.functional.one_hot(torch.arange(6) % 5, 5).double()
    eps = torch.tensor([0.0, 0.05, 0.3, 0.9, 2.0], dtype=torch.float64)
    out = alternating_projections(y, target, eps)
    assert_feasible(out, y.unsqueeze(0), eps, atol=1e-12)
    for e in range(len(eps)):
        for i in range(6):
            cur = target[i]
            for _ in range(100):
                cur = project_simplex(project_l1_ball(cur, y[i], eps[e]))
                if (cur - y[i]).abs().sum() - eps[e] <= 1e-4:
                    break
            dist = (cur - y[i]).abs().sum()
            if dist > eps[e]:
                cur = y[i] + eps[e] / dist * (cur - y[i])
            torch.testing.assert_close(out[e, i], cur, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[-1], target)  # ε = 2 allows any simplex point: y* itself


@pytest.mark.parametrize(
    "defense",
    [
        lambda m: GRAD(m, "all_ones"),
        lambda m: GRAD(m, "min_ip"),
        lambda m: MAD(m, "simplified"),
        lambda m: MAD(m, "original"),
        lambda m: MAD(m, "original", optim="linesearch"),
    ],
)
def test_outputs_on_simplex_within_budget_and_identity_at_zero(defense) -> None:
    model, x = tiny_model(seed=5, k=6), inputs(b=8, seed=9)
    y = random_posteriors(8, 6, seed=10)
    y[0] = torch.nn.functional.one_hot(torch.tensor(2), 6).double()
    eps = [0.0, 0.01, 0.1, 0.5, 1.0, 1.5, 2.5]
    out = defense(model).perturb(x, y, eps)
    assert out[0].equal(y)
    assert_feasible(out, y.unsqueeze(0), eps, atol=1e-6)


def test_float32_oracle_end_to_end() -> None:
    torch.manual_seed(0)
    victim, surrogate = Tiny(5).eval(), Tiny(5).eval()
    x = torch.randn(4, 2, 6, 6)
    for defense in (GRAD(surrogate), GRAD(surrogate, "min_ip"), MAD(surrogate), MAD(surrogate, "original")):
        clean, answers = Oracle(victim, defense, [0.0, 0.3, 1.0]).answer_sweep(x, with_clean=True)
        assert answers.shape == (3, 4, 5) and answers.dtype == torch.float32
        assert answers[0].equal(clean)
        assert_feasible(answers, clean.unsqueeze(0), [0.0, 0.3, 1.0], atol=1e-6)


def test_registry_builds_with_surrogates() -> None:
    aux = {"surrogate_e10": tiny_model(), "surrogate_e0": tiny_model(1), "surrogate_e3": tiny_model(2)}
    assert required_aux_models({"method": "GRAD", "params": [0.1]}) == ("surrogate_e10",)
    assert required_aux_models({"method": "MAD", "params": [0.1]}) == ("surrogate_e0",)
    assert required_aux_models({"method": "MAD", "params": [0.1], "surrogate_epochs": 3}) == ("surrogate_e3",)
    grad = build_defense({"method": "GRAD", "params": [0.1], "target": "min_ip"}, "cifar10", aux)
    assert grad.describe()["target"] == "min_ip" and grad.surrogate is aux["surrogate_e10"]
    mad = build_defense({"method": "MAD", "params": [0.1], "variant": "original"}, "cifar10", aux)
    assert mad.describe()["variant"] == "original" and mad.surrogate is aux["surrogate_e0"]
    with pytest.raises(ValueError, match="target"):
        build_defense({"method": "GRAD", "params": [0.1], "target": "max_norm"}, "cifar10", aux)
    with pytest.raises(ValueError, match="variant"):
        build_defense({"method": "MAD", "params": [0.1], "variant": "other"}, "cifar10", aux)
    with pytest.raises(ValueError, match="needs the query images"):
        grad.perturb(None, random_posteriors(2, 4), [0.1])
