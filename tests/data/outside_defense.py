"""A defense defined outside the package, as a user would write one (docs/api.md, "A defense of
your own"): named in a config by its import path, ``outside_defense:SMOOTH``, with this folder on
PYTHONPATH.

Smooth mixes the posterior with the uniform answer: ỹ = (1 − ε) · y + ε / K, the answer sharpened
back by ``power`` (ỹ ∝ ỹ^power; 1 leaves it alone). Its top-1 class never changes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msdefense.defenses import Defense, Option
from msdefense.defenses.registry import DefenseMethod


class Smooth(Defense):
    method = "Smooth"

    def __init__(self, power: float) -> None:
        self.power = power

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        eps = params.view(-1, 1, 1).to(probs)
        mixed = (1 - eps) * probs.unsqueeze(0) + eps / probs.shape[-1]
        sharp = mixed**self.power
        return sharp / sharp.sum(-1, keepdim=True)


SMOOTH = DefenseMethod(
    "Smooth",
    lambda options, dataset, aux, seed: Smooth(options["power"]),
    options={"power": Option("power", float, 1.0, doc="sharpening exponent", exclusive_minimum=0.0)},
    param_max=(1.0, "ε mixes in the uniform answer: 1 is the uniform answer itself"),
)

#: not a DefenseMethod: an import path naming it is refused
NOT_A_METHOD = torch.ones(1)
