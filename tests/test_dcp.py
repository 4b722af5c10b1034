"""DCP (Khaled et al., ICMLA 2023; docs/methods.md) and the shared defense contract."""

from __future__ import annotations

import pytest
import torch
from hand_formulas import dcp_by_hand

from msdefense.defenses import build_defense
from msdefense.defenses.dcp import DCP
from msdefense.defenses.none import NoDefense


def random_posteriors(n: int, k: int, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, k, generator=g, dtype=torch.float64), -1)


FIXED = [[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.05, 0.05, 0.9], [0.5, 0.5, 0.0]]


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.45, 0.8, 1.0, 1.5])
def test_dcp_matches_hand_computation(beta: float, clip: bool) -> None:
    y = torch.tensor(FIXED, dtype=torch.float64)
    got = DCP(gamma=0.2, clip_odds=clip)(None, y, beta)
    want = torch.tensor([dcp_by_hand(row, beta, 0.2, clip=clip) for row in FIXED], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_dcp_known_value() -> None:
    # y = (0.7, 0.2, 0.1), β = 1, γ = 0.2: the gate is open (m < β). Clipped odds: class 0 -> r = 0,
    # class 1: odds 0.25 -> σ(0.2 ln 0.25) - 1/2 = -0.06904, class 2: odds 1/9 -> -0.10895.
    got = DCP(gamma=0.2)(None, torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64), 1.0)[0]
    r1 = 1 / (1 + 0.25**-0.2) - 0.5
    r2 = 1 / (1 + (1 / 9) ** -0.2) - 0.5
    raw = torch.tensor([0.7, 0.2 - r1, 0.1 - r2], dtype=torch.float64)
    torch.testing.assert_close(got, raw / raw.sum())
    assert got[0] < 0.7 and got[2] > 0.1  # mass moves from the top class to the unlikely ones


def test_dcp_gate_leaves_confident_answers_alone() -> None:
    y = random_posteriors(500, 10, scale=4.0)
    beta = 0.6
    out = DCP()(None, y, beta)
    confident = y.max(-1).values > beta + 0.02  # gate = sigmoid(-20) ≈ 2e-9
    assert confident.any() and (~confident).any()
    torch.testing.assert_close(out[confident], y[confident], rtol=0, atol=1e-6)
    assert (out[~confident] - y[~confident]).abs().sum(-1).min() > 0


@pytest.mark.parametrize("k", [2, 10, 200])
def test_dcp_outputs_are_probability_vectors(k: int) -> None:
    y = torch.cat([random_posteriors(64, k), torch.eye(k)[:3].double(), torch.full((1, k), 1.0 / k).double()])
    betas = [0.0, 0.1, 0.5, 1.0, 1.5, 3.0]
    for clip in (True, False):
        out = DCP(gamma=0.1, clip_odds=clip).perturb(None, y, betas)
        assert out.shape == (len(betas), len(y), k)
        assert (out >= 0).all()
        torch.testing.assert_close(out.sum(-1), torch.ones(len(betas), len(y), dtype=out.dtype))
        assert torch.equal(out[0], y)  # β = 0 returns the input exactly


def test_sweep_equals_single_calls() -> None:
    y = random_posteriors(32, 10).float()
    betas = [0.0, 0.2, 0.7, 1.5]
    sweep = DCP().perturb(None, y, betas)
    for i, b in enumerate(betas):
        torch.testing.assert_close(sweep[i], DCP()(None, y, b))


def test_none_defense_is_identity() -> None:
    y = random_posteriors(8, 5)
    torch.testing.assert_close(NoDefense().perturb(None, y, [0.0])[0], y)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.tensor([[0.5, float("nan")]]), "NaN"),
        (torch.tensor([[1.2, -0.2]]), "negative"),
        (torch.tensor([[2.0, 3.0]]), "sum to 1"),
        (torch.tensor([0.5, 0.5]), "shape"),
    ],
)
@pytest.mark.parametrize("defense", [DCP(), NoDefense()])
def test_invalid_posteriors_are_rejected(defense, bad: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        defense.perturb(None, bad, [0.5])


def test_negative_parameter_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        DCP().perturb(None, torch.tensor([[0.5, 0.5]]), [-0.1])


def test_gamma_by_dataset() -> None:
    cfg = {"method": "DCP", "params": [0.1], "gamma": 0.2, "gamma_by_dataset": {"cifar100": 0.1}}
    assert build_defense(cfg, "cifar100").gamma == 0.1
    assert build_defense(cfg, "cifar10").gamma == 0.2


def _random_posteriors(n: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=gen) * torch.rand(n, 1, generator=gen) * 12
    return torch.softmax(logits, -1)


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("gamma", [0.1, 0.2])
def test_dcp_above_one_is_reverse_sigmoid(clip: bool, gamma: float) -> None:
    """The top probability is at most 1, so for β ≥ 1 + 17/ν the gate σ(−ν(m − β)) rounds to
    exactly 1 for every query and DCP(β) returns ReverseSigmoid(β) with the same γ, bit for bit
    (docs/methods.md, DCP): a DCP value above 1 is no longer a gated defense."""
    from msdefense.defenses.reverse_sigmoid import ReverseSigmoid

    probs = _random_posteriors(50_000, 10, seed=3)
    betas = [1.02, 1.2, 1.5, 2.0]
    dcp = DCP(gamma=gamma, nu=1000.0, clip_odds=clip).perturb(None, probs, betas)
    rs = ReverseSigmoid(gamma=gamma, clip_odds=clip).perturb(None, probs, betas)
    assert torch.equal(dcp, rs)


def test_dcp_at_one_differs_only_for_confident_queries() -> None:
    """At β = 1 exactly the gate is 1/(1 + e^{ν(m − 1)}) ∈ [1/2, 1): below m = 1 − 17/ν it rounds
    to 1 (ReverseSigmoid's answer), above it the perturbation is damped."""
    from msdefense.defenses.reverse_sigmoid import ReverseSigmoid

    probs = _random_posteriors(50_000, 10, seed=4)
    dcp = DCP(nu=1000.0).perturb(None, probs, [1.0])[0]
    rs = ReverseSigmoid().perturb(None, probs, [1.0])[0]
    m = probs.max(-1).values
    low = m < 1 - 17 / 1000.0
    assert low.any() and (~low).any()
    assert torch.equal(dcp[low], rs[low])
    assert (dcp[~low] != rs[~low]).any(-1).float().mean() > 0.5
