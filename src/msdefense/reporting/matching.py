"""Operating points matched along a defense's curve (docs/statistics.md).

A defense's curve is its runs in sweep order, starting at the undefended run (every method at its
zero parameter answers like the undefended oracle), joined by straight lines. Matching a budget
(a defended accuracy at least a target, or an effective ε at most a target) takes the
*strongest* point of the curve within the budget: the lowest clone accuracy over the part of the
curve that stays within it, crossings interpolated. On a curve that falls monotonically this is
the interpolated crossing; where a plateau or a tie leaves a choice it is the defense's
strongest setting, so a comparison against the defense is conservative for the method it is
compared with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: How a point was matched: on the budget's boundary (a crossing or a run exactly there); at a run
#: strictly inside the budget (the sweep never reaches the boundary, or a stronger run lies
#: inside it); not at all (the whole curve is outside the budget).
MATCHES = ("interpolated", "within", "unmatched")


@dataclass(frozen=True)
class Point:
    """A point of a piecewise-linear curve: segment ``index`` → ``index + 1`` at ``weight``
    (0 = the run ``index`` itself), and how it was matched."""

    index: int
    weight: float
    match: str

    def value(self, ys: Sequence[float]) -> float:
        """The curve ``ys`` (one value per run) at this point; NaN when unmatched."""
        if self.match == "unmatched":
            return math.nan
        if self.weight == 0.0:
            return float(ys[self.index])
        return float((1 - self.weight) * ys[self.index] + self.weight * ys[self.index + 1])


UNMATCHED = Point(index=-1, weight=0.0, match="unmatched")


def strongest_within(xs: Sequence[float], clone: Sequence[float], target: float, *, at_least: bool) -> Point:
    """The point of the curve (``xs``, ``clone``) with the lowest clone value among those whose
    ``x`` is within the budget (``x ≥ target`` if ``at_least``, else ``x ≤ target``); ties go to
    the later point of the sweep (the stronger setting)."""
    sign = 1.0 if at_least else -1.0
    x = [sign * float(v) for v in xs]
    t = sign * float(target)
    candidates: list[Point] = []
    for i, xi in enumerate(x):
        if xi >= t:
            candidates.append(Point(i, 0.0, "interpolated" if xi == t else "within"))
        if i + 1 < len(x) and (xi - t) * (x[i + 1] - t) < 0:
            candidates.append(Point(i, (t - xi) / (x[i + 1] - xi), "interpolated"))
    best = UNMATCHED
    best_y = math.inf
    for c in candidates:
        y = c.value(clone)
        if y <= best_y:
            best, best_y = c, y
    return best
