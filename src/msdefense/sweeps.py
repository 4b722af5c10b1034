"""What the reporting needs to know about defense sweeps without importing the defenses (no torch).

The two API-granularity defenses (docs/methods.md: TopK answers k classes, Rounding d decimals)
sweep a count: their protection grows as the value *falls*, while every other method's grows with
its value (β, τ, ε). They are not baselines of the papers' tables either (MISLEADER's Table B
compares the papers' output-perturbation defenses).
"""

from __future__ import annotations

from collections.abc import Sequence

#: methods whose protection grows as the swept value falls (the API-granularity defenses)
API_GRANULARITY = ("TopK", "Rounding")


def strength(method: str, param: float) -> float:
    """A number that grows with the defense's protection along its sweep: the value itself, or
    its negative for :data:`API_GRANULARITY` (k = 1 is TopK's strongest)."""
    return -float(param) if method in API_GRANULARITY else float(param)


def strongest(method: str, values: Sequence[str]) -> str:
    """The value of a sweep (canonical texts) where ``method`` protects most (:func:`strength`)."""
    if not values:
        raise ValueError(f"{method}: an empty sweep has no strongest value")
    return max(values, key=lambda v: strength(method, float(v)))
