"""Attacker-like queries: MISLEADER's stand-in for the attacker's query distribution.

MISLEADER (Cheng et al. 2025, arXiv 2506.02362) uses no generator: it augments benign training
images (the "attacker" data stream of ``Defense/train_defense.py``). Here the augmentation is a
batched tensor transform driven by a seeded ``torch.Generator``; the recipes are in
docs/methods.md (MISLEADER), the digits variant in docs/deviations.md (MISLEADER).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

AUGMENTATIONS = ("auto", "digits", "cifar")
"""Attacker-stream augmentations (:func:`attacker_like`): ``auto`` = ``digits`` for 1-channel
inputs, ``cifar`` otherwise."""

# The original's attacker stream: RandomResizedCrop(scale 0.8–1) → HFlip → ColorJitter(.4, .4, .4)
# → RandomGrayscale(.2) → RandomAffine(15°, translate .1, scale .9–1.1).
CIFAR_AUG = {
    "crop_scale": (0.8, 1.0),
    "crop_ratio": (3 / 4, 4 / 3),
    "jitter": 0.4,
    "grayscale_p": 0.2,
    "degrees": 15.0,
    "translate": 0.1,
    "scale": (0.9, 1.1),
}
# Digits: the same random affine, then a mix with another image of the batch and pixel noise.
DIGITS_AUG = {"degrees": 15.0, "translate": 0.1, "scale": (0.9, 1.1), "mix_max": 0.4, "noise_max": 0.1}


def _uniform(rng: torch.Generator, n: int, lo: float, hi: float, device: torch.device) -> Tensor:
    return (torch.rand(n, generator=rng, device=rng.device) * (hi - lo) + lo).to(device)


def _geometry(
    x01: Tensor,
    rng: torch.Generator,
    *,
    crop: bool,
    flip: bool,
    degrees: float,
    translate: float,
    scale: tuple[float, float],
) -> Tensor:
    """One bilinear resampling composing [resized crop] → [h-flip] → random affine (zero fill)."""
    n, dev = x01.shape[0], x01.device
    one = torch.ones(n, device=dev)
    if crop:
        area = _uniform(rng, n, *CIFAR_AUG["crop_scale"], dev)
        lo, hi = (math.log(r) for r in CIFAR_AUG["crop_ratio"])
        ratio = _uniform(rng, n, lo, hi, dev).exp()
        w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
        cx = _uniform(rng, n, -1.0, 1.0, dev) * (1 - w)
        cy = _uniform(rng, n, -1.0, 1.0, dev) * (1 - h)
    else:
        w, h, cx, cy = one, one, 0 * one, 0 * one
    f = torch.where(_uniform(rng, n, 0.0, 1.0, dev) < 0.5, -one, one) if flip else one
    theta = _uniform(rng, n, -degrees, degrees, dev) * (math.pi / 180)
    sc = _uniform(rng, n, *scale, dev)
    tx = _uniform(rng, n, -translate, translate, dev) * 2  # normalised coordinates span 2
    ty = _uniform(rng, n, -translate, translate, dev) * 2
    # Inverse of the affine: u ↦ R(−θ)(u − t)/s; then flip (x ↦ f·x); then crop (x ↦ diag(w,h)x + c).
    cos, sin = theta.cos() / sc, theta.sin() / sc
    m = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # [n, 2, 2]
    b = -(m @ torch.stack([tx, ty], -1).unsqueeze(-1)).squeeze(-1)
    left = torch.stack([w * f, h], -1)  # diag(w·f, h)
    a = left.unsqueeze(-1) * m
    off = left * b + torch.stack([cx, cy], -1)
    grid = F.affine_grid(torch.cat([a, off.unsqueeze(-1)], -1), list(x01.shape), align_corners=False)
    return F.grid_sample(x01, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _grey(x01: Tensor) -> Tensor:
    if x01.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], device=x01.device, dtype=x01.dtype).view(1, 3, 1, 1)
        return (x01 * w).sum(1, keepdim=True)
    return x01.mean(1, keepdim=True)


def _colour(x01: Tensor, rng: torch.Generator) -> Tensor:
    """ColorJitter(brightness, contrast, saturation = 0.4) in that fixed order, then RandomGrayscale."""
    n, dev, j = x01.shape[0], x01.device, CIFAR_AUG["jitter"]

    def factor() -> Tensor:
        return _uniform(rng, n, 1 - j, 1 + j, dev).view(n, 1, 1, 1)

    x01 = (x01 * factor()).clamp(0, 1)
    c = factor()
    x01 = (c * x01 + (1 - c) * _grey(x01).mean((1, 2, 3), keepdim=True)).clamp(0, 1)
    s = factor()
    x01 = (s * x01 + (1 - s) * _grey(x01)).clamp(0, 1)
    to_grey = (_uniform(rng, n, 0.0, 1.0, dev) < CIFAR_AUG["grayscale_p"]).view(n, 1, 1, 1)
    return torch.where(to_grey, _grey(x01).expand_as(x01), x01)


def attacker_like(
    x: Tensor,
    rng: torch.Generator,
    kind: str = "auto",
    mean: float | Sequence[float] = 0.5,
    std: float | Sequence[float] = 0.5,
) -> Tensor:
    """Attacker-like queries from a batch of benign normalised images ``x`` ``[B, C, H, W]``.

    MISLEADER simulates the attacker's query distribution by augmenting training images (no
    generator is used). The images are mapped back to pixel space [0, 1] with ``mean``/``std``
    (default 0.5/0.5, the input space of this package's 32-px and digits datasets), transformed,
    clamped and re-normalised. Every random number comes from ``rng`` (a ``torch.Generator`` on
    any device), so a seeded generator gives a reproducible batch; everything is batched.

    * ``cifar`` (the original's recipe): RandomResizedCrop(scale 0.8–1, ratio 3/4–4/3) → HFlip →
      RandomAffine(±15°, translate ±10 %, scale 0.9–1.1) as one bilinear resampling (zero =
      black fill), then ColorJitter(brightness/contrast/saturation 0.4, fixed order) and
      RandomGrayscale(0.2). (The original applies the jitter between flip and affine; jitter is
      pointwise, so only the fill colour of the affine's border differs.)
    * ``digits`` (1-channel data; no colour jitter and no flips, unlike the original): the same
      random affine, then a convex mix with another image of the batch (weight U(0, 0.4) of the partner) and
      Gaussian pixel noise (σ ~ U(0, 0.1) per image).
    * ``auto``: ``digits`` for 1 channel, ``cifar`` otherwise.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"attacker_like kind must be one of {AUGMENTATIONS}, got {kind!r}")
    if x.ndim != 4:
        raise ValueError(f"attacker_like expects images [B, C, H, W], got shape {tuple(x.shape)}")
    if kind == "auto":
        kind = "digits" if x.shape[1] == 1 else "cifar"
    dev, c = x.device, x.shape[1]
    m = torch.as_tensor(mean, dtype=torch.float32, device=dev).reshape(-1).expand(c).view(1, c, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=dev).reshape(-1).expand(c).view(1, c, 1, 1)
    x01 = (x.float() * s + m).clamp(0, 1)
    n, cifar = x01.shape[0], kind == "cifar"
    cfg = CIFAR_AUG if cifar else DIGITS_AUG
    affine = {k: cfg[k] for k in ("degrees", "translate", "scale")}
    x01 = _geometry(x01, rng, crop=cifar, flip=cifar, **affine)
    if cifar:
        x01 = _colour(x01.clamp(0, 1), rng)
    else:
        perm = torch.randperm(n, generator=rng, device=rng.device).to(dev)
        w = _uniform(rng, n, 0.0, cfg["mix_max"], dev).view(n, 1, 1, 1)
        x01 = (1 - w) * x01 + w * x01[perm]
        sigma = _uniform(rng, n, 0.0, cfg["noise_max"], dev).view(n, 1, 1, 1)
        noise = torch.randn(x01.shape, generator=rng, device=rng.device).to(dev)
        x01 = (x01 + sigma * noise).clamp(0, 1)
    return ((x01 - m) / s).to(x.dtype)
