"""The deployed MISLEADER victim: an equal-weight soft vote over the members.

``Defense/ensemble.py`` of Cheng et al. 2025 (MISLEADER, arXiv 2506.02362); the victim store
(:mod:`msdefense.victims`) writes and reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Ensemble(nn.Module):
    """Soft voting with equal weights over the members: p(x) = (1/K) Σ_k softmax(d_k(x)).

    ``forward`` returns ``log(max(p(x), tiny))`` rather than ``p(x)``: the oracle (and every
    other consumer of a victim) applies ``softmax`` to the victim's output, and
    ``softmax(log p) = p / Σ_k p_k = p`` because ``p`` already sums to 1 — so the oracle answers
    exactly the soft vote (up to float rounding; the clamp at the smallest normal float32 only
    touches entries that are already 0 and adds at most K·1.2e-38 mass). Returning ``p`` itself
    would make the oracle answer ``softmax(p)``, a nearly uniform vector — the probability/logit
    confusion of the MISLEADER fork of the DFME code (docs/deviations.md, MISLEADER). ``probs``
    gives ``p`` directly.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) == 0:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def probs(self, x: Tensor) -> Tensor:
        """Mean of the member softmaxes, float32 ``[B, K]``."""
        return torch.stack([torch.softmax(m(x).float(), -1) for m in self.members]).mean(0)

    def forward(self, x: Tensor) -> Tensor:
        return self.probs(x).clamp_min(torch.finfo(torch.float32).tiny).log()
