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
from torch import Tensor, nn

SIMPLEX_ATOL = 1e-5
#: How far a row of probabilities may sum from 1 (inputs and every defense's answers)
SUM_ATOL = 1e-3


def as_probabilities(probs: Tensor) -> Tensor:
    """Integer or boolean posteriors (one-hot labels, say) as the default float dtype; floats unchanged."""
    return probs if probs.is_floating_point() else probs.to(torch.get_default_dtype())


def check_probabilities(probs: Tensor, name: str = "posterior") -> None:
    """Raise ``ValueError`` unless ``probs`` is a ``[B, K]`` batch of probability vectors."""
    if probs.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, classes], got {tuple(probs.shape)}")
    if probs.shape[0] == 0:
        return
    if not torch.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or inf; defenses need probability vectors")
    if (probs < 0).any():
        raise ValueError(
            f"{name} has negative entries (min {probs.min().item():.3g}); expected probabilities"
        )
    sums = probs.sum(-1)
    worst = (sums - 1).abs().max().item()
    if worst > SUM_ATOL:
        raise ValueError(
            f"{name} rows must sum to 1 (worst deviation {worst:.3g}); pass softmax outputs, not logits"
        )


def as_param_tensor(params: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    """Sweep values as a 1-D tensor on the device and dtype of ``like``."""
    p = torch.as_tensor(params, dtype=like.dtype, device=like.device).reshape(-1)
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"defense parameters must be finite and non-negative, got {p.tolist()}")
    return p


def output_classes(model: nn.Module) -> int | None:
    """The number of classes a classifier outputs: its last ``nn.Linear``'s width (None without one)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def check_simplex(out: Tensor, method: str, module: str = __name__) -> None:
    """Raise ``RuntimeError`` unless every row of ``out`` ``[..., K]`` is a probability vector (one
    sync). ``module``: where the defense's class is defined; the message says whom to ask for a fix
    (the package for its own methods, the defense's author for one registered from outside)."""
    if out.numel() == 0:
        return
    ok = (
        torch.isfinite(out).all() & (out.min() >= -SIMPLEX_ATOL) & ((out.sum(-1) - 1).abs().max() <= SUM_ATOL)
    )
    if not bool(ok):
        fix = (
            "this is a bug in the package's defense: please report it with the inputs"
            if module.split(".")[0] == "msdefense"
            else f"its _perturb (in {module}) must return rows on the simplex: non-negative, summing to 1"
        )
        raise RuntimeError(
            f"defense {method} returned answers off the probability simplex (non-finite, negative or "
            f"rows not summing to 1); {fix}"
        )


class Defense(ABC):
    """Base class of every output-perturbation defense."""

    method: ClassVar[str]
    uses_input: ClassVar[bool] = False

    @abstractmethod
    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        """Defended posteriors ``[E, B, K]`` for valid ``probs`` ``[B, K]`` and ``params`` ``[E]``."""

    def _check_params(self, params: Tensor) -> None:
        """Refuse sweep values the method cannot use (``ValueError``); any value >= 0 by default."""
        return None

    def auxiliary_models(self) -> dict[str, nn.Module]:
        """The defense's own models (name → model), whose class count must be the victim's."""
        return {}

    def _check_input(self, x: Tensor | None, probs: Tensor) -> None:
        classes = probs.shape[1]
        for name, model in self.auxiliary_models().items():
            k = output_classes(model)
            if k is not None and k != classes:
                raise ValueError(
                    f"{self.method}: its {name} model gives {k} classes but the victim's posteriors have "
                    f"{classes}; train the {name} model for the victim's dataset"
                )
        if not self.uses_input:
            return
        if x is None:
            raise ValueError(f"{self.method} needs the query images x (it reads them), got None")
        if x.shape[0] != probs.shape[0]:
            raise ValueError(f"{self.method}: a batch of {x.shape[0]} images but {probs.shape[0]} posteriors")
        if x.is_floating_point() and not torch.isfinite(x).all():
            raise ValueError(f"{self.method}: the input images contain NaN or inf; query with finite images")

    def perturb(self, x: Tensor | None, probs: Tensor, params: Sequence[float] | Tensor) -> Tensor:
        """Check the inputs, then return the defended posteriors ``[E, B, K]`` for the sweep ``params``.

        Integer posteriors (one-hot) are taken as floats; an empty batch gives an empty answer; the
        answers are checked to be on the simplex.
        """
        probs = as_probabilities(probs)
        check_probabilities(probs)
        p = as_param_tensor(params, probs)
        self._check_params(p)
        self._check_input(x, probs)
        if probs.shape[0] == 0:
            return probs.new_empty((len(p), *probs.shape))
        out = self._perturb(x, probs, p)
        if out.shape != (len(p), *probs.shape):
            raise RuntimeError(
                f"{self.method} returned shape {tuple(out.shape)}, expected {(len(p), *probs.shape)}"
            )
        check_simplex(out, self.method, type(self).__module__)
        return out

    def __call__(self, x: Tensor | None, probs: Tensor, param: float) -> Tensor:
        """Defended posteriors ``[B, K]`` for one parameter value."""
        return self.perturb(x, probs, [param])[0]

    def describe(self) -> dict[str, Any]:
        """The method name and options, for metrics records."""
        return {"method": self.method}
