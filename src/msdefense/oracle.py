"""The oracle: a victim behind a defense, the only thing an attack may touch
(docs/architecture.md).

It returns probabilities (rows on the simplex), counts every image it answers as one query,
and refuses a batch that would exceed its budget before doing any work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .defenses import Defense


class QueryBudgetExceeded(RuntimeError):
    """A batch would take the oracle past its query budget."""


@torch.no_grad()
def victim_posteriors(victim: nn.Module, x: Tensor) -> Tensor:
    """Softmax of the victim's logits in float32 (the victim is put in eval mode)."""
    victim.eval()
    return torch.softmax(victim(x).float(), dim=-1)


class Oracle:
    """Victim + defense + budget. ``params`` holds one value, or the sweep answered at once."""

    def __init__(
        self,
        victim: nn.Module,
        defense: Defense,
        params: Sequence[float],
        budget: int | None = None,
    ) -> None:
        if len(params) == 0:
            raise ValueError("an oracle needs at least one defense parameter")
        if budget is not None and budget < 0:
            raise ValueError(f"query budget must be >= 0, got {budget}")
        self.victim, self.defense, self.params = victim, defense, list(map(float, params))
        self.budget = budget
        self.queries_used = 0

    @property
    def queries_left(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries_used

    def _charge(self, n: int) -> None:
        if self.budget is not None and self.queries_used + n > self.budget:
            raise QueryBudgetExceeded(
                f"batch of {n} queries refused: {self.queries_used} of {self.budget} already used"
            )
        self.queries_used += n

    def answer_sweep(self, x: Tensor, with_clean: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Defended posteriors ``[E, B, K]`` for every parameter, from one victim pass.

        ``with_clean=True`` also returns the undefended posteriors ``[B, K]`` first: the
        defender's own bookkeeping (L1 distances), never handed to an attack.
        """
        self._charge(len(x))
        probs = victim_posteriors(self.victim, x)
        with torch.no_grad() if not self.defense.uses_input else torch.enable_grad():
            answers = self.defense.perturb(x, probs, self.params).detach()
        return (probs, answers) if with_clean else answers

    def __call__(self, x: Tensor) -> Tensor:
        """Defended posteriors ``[B, K]`` (the oracle must hold exactly one parameter)."""
        if len(self.params) != 1:
            raise ValueError("calling an oracle needs exactly one parameter; use answer_sweep for a sweep")
        return self.answer_sweep(x)[0]
