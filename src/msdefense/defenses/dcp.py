"""DCP, the defense of Khaled et al., "Efficient Defense Against Model Stealing Attacks on
Convolutional Neural Networks" (ICMLA 2023, arXiv 2309.01838), as specified by the paper's code
(``method_dcp`` in ``df/defenses.py`` of KacemKhaled/defending-extraction; docs/methods.md).

For a posterior y with max-softmax confidence m and sweep value β:

    a   = 1 / (1 + exp(ν (m − β)))                 gate, ν = 1000 by default (≈1 when m < β)
    o_k = y_k / (1 − y_k)                           odds, clipped to [1e-12, 1 − 1e-12] by default
    r_k = β (σ(γ ln o_k) − 1/2)                     reverse-sigmoid term (Lee et al. 2019)
    ŷ   = y − a r ;   ỹ = ŷ / Σ_k ŷ_k

β is both the confidence threshold of the gate and the magnitude of the reverse sigmoid.
With the original code's upper odds clip just below 1, classes with y_k ≥ 0.5 get r_k = 0 and
every other class gains mass (docs/deviations.md). ``clip_odds=False`` gives the unclipped
reverse sigmoid of Lee et al.; there ŷ can in principle go negative for large β, so it is
clamped at 0 before renormalising.

The options (γ, ``gamma_by_dataset``, ν, ``clip_odds``) are declared once in :data:`OPTIONS`; the
γ, per-dataset γ and odds-clip options and the reverse-sigmoid term are shared with ReverseSigmoid
(:mod:`.sigmoid_family`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .base import Defense
from .options import Option, declare, defaults, resolve
from .registry import DefenseMethod, register
from .sigmoid_family import CLIP_ODDS, GAMMA, GAMMA_BY_DATASET, gamma_for, renormalise, reverse_sigmoid_term

OPTIONS = declare(
    GAMMA,
    GAMMA_BY_DATASET,
    Option("nu", float, 1000.0, exclusive_minimum=0, doc="steepness ν of the confidence gate"),
    CLIP_ODDS,
)
DEFAULTS = defaults(OPTIONS)


class DCP(Defense):
    """Deceptive perturbation gated on low confidence (Khaled et al., ICMLA 2023; docs/methods.md)."""

    method = "DCP"

    def __init__(
        self,
        gamma: float = DEFAULTS["gamma"],
        nu: float = DEFAULTS["nu"],
        clip_odds: bool = DEFAULTS["clip_odds"],
    ) -> None:
        checked = resolve(OPTIONS, {"gamma": gamma, "nu": nu, "clip_odds": clip_odds}, key=self.method)
        self.gamma, self.nu, self.clip_odds = checked["gamma"], checked["nu"], checked["clip_odds"]

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        confidence = probs.max(-1).values  # [B]
        gate = torch.sigmoid(-self.nu * (confidence.unsqueeze(0) - params.view(-1, 1)))  # [E, B]
        r = reverse_sigmoid_term(probs, params, self.gamma, self.clip_odds)
        out = renormalise(probs.unsqueeze(0) - gate.unsqueeze(-1) * r)
        # β = 0 gives r = 0; return the input exactly instead of y / (Σy ≈ 1 ± 1e-7).
        return torch.where(params.view(-1, 1, 1) == 0, probs.unsqueeze(0), out)

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "gamma": self.gamma, "nu": self.nu, "clip_odds": self.clip_odds}


def _build(options: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return DCP(gamma=gamma_for(options, dataset), nu=options["nu"], clip_odds=options["clip_odds"])


register(DefenseMethod("DCP", _build, options=OPTIONS))
