"""No defense: the oracle returns the victim's posterior unchanged (docs/methods.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from .base import Defense
from .registry import DefenseMethod, register


class NoDefense(Defense):
    """ỹ = y for every sweep value (the original asserts the sweep is ``[0.0]``)."""

    method = "None"

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        return probs.unsqueeze(0).expand(len(params), *probs.shape).clone()


def _build(options: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return NoDefense()


register(DefenseMethod("None", _build))
