"""No defense: the oracle returns the victim's posterior unchanged (reference §7.0)."""

from __future__ import annotations

from torch import Tensor

from .base import Defense


class NoDefense(Defense):
    """ỹ = y for every sweep value (the original asserts the sweep is ``[0.0]``)."""

    method = "None"

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        return probs.unsqueeze(0).expand(len(params), *probs.shape).clone()
