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
γ, per-dataset γ and odds-clip options are shared with ReverseSigmoid.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from .base import Defense
from .options import Option, declare, defaults, resolve
from .registry import DefenseMethod, register

ODDS_EPS = 1e-12

# Options of the reverse-sigmoid family, shared by DCP and ReverseSigmoid.
GAMMA = Option("gamma", float, 0.2, exclusive_minimum=0, doc="slope γ of the reverse sigmoid")
GAMMA_BY_DATASET = Option(
    "gamma_by_dataset",
    dict,
    MappingProxyType({}),
    exclusive_minimum=0,
    doc="per-dataset γ (victim dataset → γ > 0) overriding gamma",
)
CLIP_ODDS = Option(
    "clip_odds",
    bool,
    True,
    doc="clip the odds at 1 − 1e-12 as the original code (classes with y ≥ 0.5 never move); false: unclipped",
)
OPTIONS = declare(
    GAMMA,
    GAMMA_BY_DATASET,
    Option("nu", float, 1000.0, exclusive_minimum=0, doc="steepness ν of the confidence gate"),
    CLIP_ODDS,
)
DEFAULTS = defaults(OPTIONS)


def gamma_for(options: Mapping[str, Any], dataset: str) -> float:
    """γ of a reverse-sigmoid method from resolved options: ``gamma_by_dataset[dataset]``, else ``gamma``."""
    return float(options["gamma_by_dataset"].get(dataset, options["gamma"]))


def reverse_sigmoid_term(probs: Tensor, params: Tensor, gamma: float, clip_odds: bool) -> Tensor:
    """r = β (σ(γ ln odds(y)) − 1/2), shape ``[E, B, K]`` (shared by DCP and ReverseSigmoid)."""
    y = probs.clamp(ODDS_EPS, 1 - ODDS_EPS)
    odds = y / (1 - y)
    odds = odds.clamp(ODDS_EPS, 1 - ODDS_EPS) if clip_odds else odds.clamp_min(ODDS_EPS)
    shape = torch.sigmoid(gamma * torch.log(odds)) - 0.5  # [B, K]
    return params.view(-1, 1, 1) * shape.unsqueeze(0)


def renormalise(yhat: Tensor) -> Tensor:
    """Clamp at 0 and divide by the row sum (a zero row falls back to uniform)."""
    yhat = yhat.clamp_min(0)
    total = yhat.sum(-1, keepdim=True)
    uniform = torch.full_like(yhat, 1.0 / yhat.shape[-1])
    return torch.where(total > 0, yhat / total.clamp_min(torch.finfo(yhat.dtype).tiny), uniform)


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
