"""The reverse-sigmoid term and options that ReverseSigmoid (Lee et al., IEEE S&P Workshops 2019)
and DCP (Khaled et al., ICMLA 2023) share: r = β (σ(γ ln o) − 1/2) on the clipped odds o of the
posterior, and the renormalisation onto the simplex (docs/methods.md). DCP is this term behind a
confidence gate; each method's own module holds only what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from .options import Option

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


def gamma_for(options: Mapping[str, Any], dataset: str | None) -> float:
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
