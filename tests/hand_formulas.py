"""Scalar transcriptions of the formulas of docs/methods.md, one entry at a time, for hand-checked tests."""

from __future__ import annotations

import math


def reverse_sigmoid_by_hand(
    y: list[float], beta: float, gamma: float, clip: bool = True, gate: float = 1.0
) -> list[float]:
    """ŷ = y − gate·β(σ(γ ln odds(y)) − 1/2), clamped at 0 and renormalised (docs/methods.md: DCP, ReverseSigmoid)."""
    out = []
    for yk in y:
        yk_c = min(max(yk, 1e-12), 1 - 1e-12)
        odds = yk_c / (1 - yk_c)
        odds = min(max(odds, 1e-12), 1 - 1e-12) if clip else max(odds, 1e-12)
        r = beta * (1 / (1 + math.exp(-gamma * math.log(odds))) - 0.5)
        out.append(max(yk - gate * r, 0.0))
    s = sum(out)
    return [v / s for v in out]


def dcp_by_hand(
    y: list[float], beta: float, gamma: float, nu: float = 1000.0, clip: bool = True
) -> list[float]:
    """DCP: the reverse sigmoid gated by a = 1 / (1 + exp(ν (max y − β))) (Khaled et al. 2023; docs/methods.md)."""
    z = nu * (max(y) - beta)
    gate = 0.0 if z > 700 else 1.0 / (1.0 + math.exp(z))
    return reverse_sigmoid_by_hand(y, beta, gamma, clip, gate)
