"""TopK, an API-granularity defense: the service answers only its k most probable classes.

Restricting a prediction API to its top-k classes is the cheapest defense any service can deploy
(Tramèr et al., "Stealing Machine Learning Models via Prediction APIs", USENIX Security 2016,
Sec. 7; Orekondy et al., "Prediction Poisoning", ICLR 2020, Sec. 5.1; Tang et al., "ModelGuard",
USENIX Security 2024, Sec. 6: the "top-1" API). For a posterior y and sweep value k,

    ỹ_i = y_i / Σ_{j ∈ T_k} y_j  for i ∈ T_k,   ỹ_i = 0 otherwise,

where T_k holds the k largest entries of y (ties go to the lower class index, as ``argmax``
does). k = 1 answers the one-hot label of the argmax: a label-only API. k ≥ K returns y. The
argmax never changes, so the defender loses no accuracy; docs/methods.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Defense
from .registry import DefenseMethod, register


def class_ranks(probs: Tensor) -> Tensor:
    """Each class's rank in its row, 0 for the largest (``[B, K]`` long; ties: lower index first)."""
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(probs.shape[-1], device=probs.device).expand_as(order))
    return ranks


class TopK(Defense):
    """Answer the k most probable classes, renormalised (k = 1: the label only); docs/methods.md."""

    method = "TopK"

    def _check_params(self, params: Tensor) -> None:
        if ((params < 1) | (params != params.round())).any():
            raise ValueError(f"TopK: k must be a whole number >= 1 (classes answered), got {params.tolist()}")

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        keep = class_ranks(probs).unsqueeze(0) < params.view(-1, 1, 1)  # [E, B, K]
        kept = probs.unsqueeze(0) * keep
        return kept / kept.sum(-1, keepdim=True)


def _build(options: Mapping[str, object], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return TopK()


register(
    DefenseMethod(
        "TopK",
        _build,
        param_min=(1.0, "k counts the classes answered; k = 1 is the label only"),
        integer_params=True,
    )
)
