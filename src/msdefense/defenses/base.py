"""The defense contract: perturb a batch of victim posteriors for a whole parameter sweep.

A defense is configured once (its options and auxiliary models), then called on a batch:
``perturb(x, probs, params) -> [E, B, K]`` returns the defended posteriors for every sweep value
``params[e]`` from the *same* victim posteriors, so one victim forward pass serves the whole ε
sweep. Output-only methods ignore ``x``. Everything is vectorised over the batch and the sweep.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

SIMPLEX_ATOL = 1e-5


def check_probabilities(probs: Tensor, name: str = "posterior") -> None:
    """Raise ``ValueError`` unless ``probs`` is a ``[B, K]`` batch of probability vectors."""
    if probs.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, classes], got {tuple(probs.shape)}")
    if not torch.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or inf; defenses need probability vectors")
    if (probs < 0).any():
        raise ValueError(
            f"{name} has negative entries (min {probs.min().item():.3g}); expected probabilities"
        )
    sums = probs.sum(-1)
    worst = (sums - 1).abs().max().item()
    if worst > 1e-3:
        raise ValueError(
            f"{name} rows must sum to 1 (worst deviation {worst:.3g}); pass softmax outputs, not logits"
        )


def as_param_tensor(params: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    """Sweep values as a 1-D tensor on the device and dtype of ``like``."""
    p = torch.as_tensor(params, dtype=like.dtype, device=like.device).reshape(-1)
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"defense parameters must be finite and non-negative, got {p.tolist()}")
    return p


class Defense(ABC):
    """Base class of every output-perturbation defense."""

    method: ClassVar[str]
    uses_input: ClassVar[bool] = False

    @abstractmethod
    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        """Defended posteriors ``[E, B, K]`` for valid ``probs`` ``[B, K]`` and ``params`` ``[E]``."""

    def perturb(self, x: Tensor | None, probs: Tensor, params: Sequence[float] | Tensor) -> Tensor:
        """Check the inputs, then return the defended posteriors ``[E, B, K]`` for the sweep ``params``."""
        check_probabilities(probs)
        p = as_param_tensor(params, probs)
        out = self._perturb(x, probs, p)
        if out.shape != (len(p), *probs.shape):
            raise RuntimeError(
                f"{self.method} returned shape {tuple(out.shape)}, expected {(len(p), *probs.shape)}"
            )
        return out

    def __call__(self, x: Tensor | None, probs: Tensor, param: float) -> Tensor:
        """Defended posteriors ``[B, K]`` for one parameter value."""
        return self.perturb(x, probs, [param])[0]

    def describe(self) -> dict[str, Any]:
        """The method name and options, for metrics records."""
        return {"method": self.method}
