"""ReverseSigmoid, the deceptive-perturbation defense of Lee et al., "Defending against NN model
stealing attacks using deceptive perturbations" (IEEE S&P Workshops 2019), as implemented in the
paper code of Khaled et al. (ICMLA 2023) and Mazeika et al. (ICML 2022), ``method_reverse_sigmoid``
(docs/methods.md).

For a posterior y and sweep value β (the perturbation magnitude):

    o_k = y_k / (1 − y_k)                          odds, clipped to [1e-12, 1 − 1e-12] by default
    ŷ_k = y_k − β (σ(γ ln o_k) − 1/2)
    ỹ   = ŷ / Σ_k ŷ_k

This is DCP without the confidence gate; the term, the renormalisation and the options γ,
``gamma_by_dataset`` and ``clip_odds`` are shared with DCP (:mod:`.sigmoid_family`). With the original code's odds
clip, classes with y_k ≥ 0.5 are never reduced and every other class gains mass
(docs/deviations.md); ``clip_odds=False`` gives the unclipped reverse sigmoid of Lee et al.,
where ŷ is clamped at 0 before renormalising.

γ: the original code uses γ = 0.1 for cifar10 and 0.2 for every other dataset — the *opposite*
dataset condition from DCP (0.1 for cifar100). The declared default is γ = 0.2, so the paper
config sets ``gamma_by_dataset: {cifar10: 0.1}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .base import Defense
from .options import declare, defaults, resolve
from .registry import DefenseMethod, register
from .sigmoid_family import CLIP_ODDS, GAMMA, GAMMA_BY_DATASET, gamma_for, renormalise, reverse_sigmoid_term

OPTIONS = declare(GAMMA, GAMMA_BY_DATASET, CLIP_ODDS)
DEFAULTS = defaults(OPTIONS)


class ReverseSigmoid(Defense):
    """Reverse-sigmoid perturbation of Lee et al. (IEEE S&P Workshops 2019).

    The sweep value is β; β = 0 returns the input exactly.
    """

    method = "ReverseSigmoid"

    def __init__(self, gamma: float = DEFAULTS["gamma"], clip_odds: bool = DEFAULTS["clip_odds"]) -> None:
        checked = resolve(OPTIONS, {"gamma": gamma, "clip_odds": clip_odds}, key=self.method)
        self.gamma, self.clip_odds = checked["gamma"], checked["clip_odds"]

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        r = reverse_sigmoid_term(probs, params, self.gamma, self.clip_odds)  # [E, B, K]
        out = renormalise(probs.unsqueeze(0) - r)
        # β = 0 gives r = 0; return the input exactly instead of y / (Σy ≈ 1 ± 1e-7).
        return torch.where(params.view(-1, 1, 1) == 0, probs.unsqueeze(0), out)

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "gamma": self.gamma, "clip_odds": self.clip_odds}


def _build(options: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return ReverseSigmoid(gamma=gamma_for(options, dataset), clip_odds=options["clip_odds"])


register(DefenseMethod("ReverseSigmoid", _build, options=OPTIONS))
