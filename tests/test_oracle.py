"""The oracle contract: probabilities out, every image counted, budget enforced before work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from msdefense.defenses.dcp import DCP
from msdefense.defenses.none import NoDefense
from msdefense.oracle import Oracle, QueryBudgetExceeded


class CountingVictim(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(x)
        return self.fc(x)


def test_counts_and_refuses_past_budget() -> None:
    victim = CountingVictim()
    oracle = Oracle(victim, NoDefense(), [0.0], budget=10)
    out = oracle(torch.randn(6, 4))
    assert oracle.queries_used == 6 and oracle.queries_left == 4
    torch.testing.assert_close(out.sum(-1), torch.ones(6))
    assert (out >= 0).all()
    with pytest.raises(QueryBudgetExceeded, match="6 of 10"):
        oracle(torch.randn(5, 4))
    assert oracle.queries_used == 6 and victim.images_seen == 6  # refused before the victim ran
    oracle(torch.randn(4, 4))
    assert oracle.queries_used == 10


def test_sweep_counts_each_image_once_and_matches_defense() -> None:
    victim = CountingVictim()
    params = [0.0, 0.5, 1.0]
    oracle = Oracle(victim, DCP(), params)
    x = torch.randn(5, 4)
    clean, answers = oracle.answer_sweep(x, with_clean=True)
    assert answers.shape == (3, 5, 3) and oracle.queries_used == 5 and victim.images_seen == 5
    torch.testing.assert_close(clean, torch.softmax(victim.fc(x), -1).detach())
    torch.testing.assert_close(answers, DCP().perturb(None, clean, params))


def test_single_call_needs_one_parameter() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Oracle(CountingVictim(), DCP(), [0.1, 0.2])(torch.randn(2, 4))
