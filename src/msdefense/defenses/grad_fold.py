"""The constants of a folded eval-mode ``Conv2d → BatchNorm2d`` pair under GRAD's ALL-ONES
tangent (:mod:`.grad_ones`): folded once per surrogate, reused for every query batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

C = -1.0  # the ALL-ONES target's tangent on every parameter


@dataclass(frozen=True)
class Folded:
    """The constants of a folded ``Conv2d → BatchNorm2d`` under the ALL-ONES tangent."""

    weight: Tensor  # W·s
    shift: Tensor
    dshift: Tensor
    box_scale: Tensor
    primal_ratio: Tensor | None  # C/γ, or None when γ is absent or has a zero
    extra_weight: Tensor | None  # W·ds, convolved with x when there is no ratio but a γ


def fold(
    w: Tensor,
    b: Tensor | None,
    *,
    g: Tensor | None,
    be: Tensor | None,
    mu: Tensor,
    var: Tensor,
    eps: float,
) -> Folded:
    """W_f = W·s, shift = β − μ·s + b·s and their tangents along C (s = γ·r, ds = C·r, r = 1/√(σ²+ε))."""
    r = (var + eps).rsqrt()
    scale = g * r if g is not None else r
    dscale = C * r if g is not None else torch.zeros_like(r)
    shift = -mu * scale
    dshift = -mu * dscale
    if be is not None:
        shift = shift + be
        dshift = dshift + C
    if b is not None:
        shift = shift + b * scale
        dshift = dshift + C * scale + b * dscale
    no_ratio = g is None or bool((g == 0).any())  # no γ tangent, or a γ the ratio cannot divide by
    return Folded(
        weight=w * scale.view(-1, 1, 1, 1),
        shift=shift,
        dshift=dshift,
        box_scale=C * scale,
        primal_ratio=None if no_ratio else C / g,
        extra_weight=w * dscale.view(-1, 1, 1, 1) if no_ratio and g is not None else None,
    )


def conv_bn(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    gamma: Tensor | None,
    beta: Tensor | None,
    mean: Tensor,
    *,
    var: Tensor,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    eps: float,
) -> Tensor:
    """``BN_eval(conv(x))`` as one convolution with folded weights, differentiable in every parameter."""
    scale = (var + eps).rsqrt()
    if gamma is not None:
        scale = gamma * scale
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    if bias is not None:
        shift = shift + bias * scale
    return F.conv2d(x, weight * scale.reshape(-1, 1, 1, 1), shift, stride, padding, dilation, groups)
