"""TopK and Rounding, the API-granularity defenses (docs/methods.md), against hand-computed answers."""

from __future__ import annotations

import pytest
import torch

from msdefense.defenses import build_defense

Y = torch.tensor(
    [[0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [0.2, 0.2, 0.6], [0.05, 0.9, 0.05], [0.44, 0.43, 0.13]],
    dtype=torch.float64,
)


def answers(method: str, params: list[float]) -> torch.Tensor:
    return build_defense({"method": method}, "digits").perturb(None, Y, params)


def test_top_k_keeps_the_k_largest_renormalised() -> None:
    out = answers("TopK", [1, 2, 3])
    labels = torch.tensor([0, 0, 2, 1, 0])
    assert torch.equal(out[0], torch.nn.functional.one_hot(labels, 3).double())  # k = 1: the label
    want_2 = [
        [0.5 / 0.8, 0.3 / 0.8, 0],
        [0.34 / 0.67, 0.33 / 0.67, 0],
        [0.25, 0, 0.75],
        [0.05 / 0.95, 0.9 / 0.95, 0],
    ]
    torch.testing.assert_close(out[1, :4], torch.tensor(want_2, dtype=torch.float64))  # ties: lower index
    torch.testing.assert_close(out[2], Y)  # k = K: the posterior
    assert torch.equal(out.argmax(-1), Y.argmax(-1).expand(3, -1))  # no accuracy cost


def test_rounding_rounds_renormalises_and_falls_back_to_the_label() -> None:
    out = answers("Rounding", [0, 1, 2])
    # d = 0: 0.5 rounds to 0 (halves to even), so row 0 has no mass left and answers its label;
    # row 3's 0.9 rounds to 1
    torch.testing.assert_close(out[0, [0, 1, 3]], torch.eye(3, dtype=torch.float64)[[0, 0, 1]])
    third = 1 / 3
    want_1 = [
        [0.5, 0.3, 0.2],
        [third, third, third],
        [0.2, 0.2, 0.6],
        [0.0, 1.0, 0.0],
        [0.4 / 0.9, 0.4 / 0.9, 0.1 / 0.9],
    ]
    torch.testing.assert_close(out[1], torch.tensor(want_1, dtype=torch.float64))
    torch.testing.assert_close(out[2], Y)  # two decimals: these rows unchanged
    assert out[1, 4].argmax() == 0  # a tie after rounding keeps the first class


@pytest.mark.parametrize(
    ("method", "bad", "message"),
    [
        ("TopK", [0.0], "whole number >= 1"),
        ("TopK", [2.5], "whole number >= 1"),
        ("Rounding", [1.5], "whole number of decimals"),
        ("Rounding", [8.0], "0 to 7"),
    ],
)
def test_library_calls_refuse_sweep_values_the_method_cannot_use(
    method: str, bad: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        answers(method, bad)


def test_the_reporting_knows_which_methods_are_strongest_at_their_smallest_value() -> None:
    """msdefense.sweeps (read by the tables, which import no defense) names exactly the methods
    whose sweep counts classes or decimals."""
    from msdefense.defenses import DEFENSES
    from msdefense.sweeps import API_GRANULARITY, strength

    assert {n for n in DEFENSES if DEFENSES[n].integer_params} == set(API_GRANULARITY)
    assert strength("TopK", 1) > strength("TopK", 3) and strength("DCP", 1.5) > strength("DCP", 0.8)
