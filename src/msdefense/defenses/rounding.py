"""Rounding, an API-granularity defense: the service answers its probabilities to d decimals.

Rounding the posterior is the other output restriction every service can deploy (Tramèr et al.,
"Stealing Machine Learning Models via Prediction APIs", USENIX Security 2016, Sec. 7; Tang et
al., "ModelGuard", USENIX Security 2024, Sec. 6). For a posterior y and sweep value d,

    r = round(10^d · y) / 10^d ;   ỹ = r / Σ_j r_j ,

with ``torch.round`` (halves to even). Where every entry rounds to 0 (no class reaches
0.5 · 10^-d), the answer is the one-hot label of the argmax of y: the API still names its top
class. The renormalisation puts the answer back on the simplex (rounded entries need not sum
to 1). The argmax can change only between classes that round to the same value (the first
index wins); docs/methods.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Defense
from .registry import DefenseMethod, register

#: float32 carries about 7 significant decimal digits: more decimals round nothing
MAX_DECIMALS = 7


class Rounding(Defense):
    """Answer the probabilities rounded to d decimals, renormalised; docs/methods.md."""

    method = "Rounding"

    def _check_params(self, params: Tensor) -> None:
        if ((params > MAX_DECIMALS) | (params != params.round())).any():
            raise ValueError(
                f"Rounding: d must be a whole number of decimals, 0 to {MAX_DECIMALS}, got {params.tolist()}"
            )

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        work = torch.promote_types(probs.dtype, torch.float32)  # 10^7 overflows float16
        scale = (10.0 ** params.to(work)).view(-1, 1, 1)  # [E, 1, 1]
        rounded = torch.round(probs.to(work).unsqueeze(0) * scale) / scale  # [E, B, K]
        total = rounded.sum(-1, keepdim=True)
        label = nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).to(work)  # [B, K]
        out = torch.where(total > 0, rounded / total.clamp_min(torch.finfo(work).tiny), label)
        return out.to(probs.dtype)


def _build(options: Mapping[str, object], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return Rounding()


register(
    DefenseMethod(
        "Rounding",
        _build,
        param_max=(float(MAX_DECIMALS), "float32 answers carry about 7 decimal digits"),
        integer_params=True,
    )
)
