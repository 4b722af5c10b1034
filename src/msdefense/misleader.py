"""MISLEADER: distilled defense members pushed away from a simulated attacker, and their ensemble.

Reference: ``reference/seed-misleader-dfme.md`` §1 (Cheng et al., arXiv 2506.02362; code
``LabRAI/misleader``). Each *member* ``d`` is distilled from the frozen victim ("teacher") ``t`` on
benign training data while it maximises its divergence from an *inner attacker* ``a`` that
imitates ``d`` on "attacker-like" queries (§1.3, an approximation of the bilevel problem by one
alternating attacker/member update per batch). K heterogeneous members form a soft-voting
ensemble (§1.5), the deployed victim.

Deviations from the original code, all deliberate (see also docs/deviations.md):

* model selection on a held-out **validation** split, not the test set (§6 P10);
* the attacker-like augmentation of 1-channel digits has no colour jitter and no flips (§6 P13);
  it is a batched tensor transform with a seeded generator (no PIL, no worker processes);
* the cosine schedules are stepped per iteration (T_max = epochs × steps), without the
  original's one-epoch shift; bfloat16 autocast on CUDA (no GradScaler needed), fp32 on CPU;
* the member's output on the attacker batch is computed once per step, with gradient, and its
  detached copy is the inner attacker's target (the original recomputed it ``a_iter + 1`` times;
  identical for models without dropout, and BN running statistics see the batch once);
* the ensemble's ``forward`` returns ``log(mean softmax)`` so that the oracle's softmax gives back
  exactly the soft vote (§1.6 / §6 P6: the original fed probabilities where logits were expected).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .io import atomic_path
from .models import ARCHITECTURES, build_model
from .seeding import derive_seed
from .training import _autocast, accuracy, dataset_labels, predict_probs, prepare_model

AUGMENTATIONS = ("auto", "digits", "cifar")
"""Attacker-stream augmentations (:func:`attacker_like`): ``auto`` = ``digits`` for 1-channel
inputs, ``cifar`` otherwise."""

# §1.4: the (arch, λ, T, α) grid of train.sh (CIFAR-10; the inner attacker has the member's arch).
PAPER_CIFAR10_GRID: tuple[tuple[str, float, float, float], ...] = (
    ("resnet18_8x", 0.001, 6.0, 0.3),
    ("mobilenet_v2", 0.05, 4.0, 0.9),
    ("densenet121", 0.01, 2.0, 0.3),
)
# §1.5: the MNIST ensemble's members (no λ/T/α are scripted for MNIST; §1.3 defaults are 0.5/2/0.3).
PAPER_MNIST_ARCHS: tuple[str, ...] = ("lenet5", "lenet5half", "lenet5fifth")

_SPEC_ALIASES = {
    "arch": "arch",
    "lam": "lam",
    "lambda": "lam",
    "lambda_": "lam",
    "temperature": "temperature",
    "T": "temperature",
    "alpha": "alpha",
}


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpec:
    """One member's architecture and loss weights (§1.3 ``--lambda_``, ``--T``, ``--alpha``; §1.4).

    ``lam`` ≥ 0 weights the divergence from the inner attacker, ``temperature`` > 0 is the
    distillation temperature, ``alpha`` ∈ [0, 1] weights the soft (teacher) term and
    ``1 − alpha`` the hard-label cross-entropy.
    """

    arch: str
    lam: float
    temperature: float
    alpha: float

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or self.arch not in ARCHITECTURES:
            raise ValueError(
                f"MemberSpec.arch: unknown architecture {self.arch!r}; known: {', '.join(sorted(ARCHITECTURES))}"
            )
        for name in ("lam", "temperature", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"MemberSpec.{name} must be a finite number, got {value!r}")
        if self.lam < 0:
            raise ValueError(f"MemberSpec.lam (λ) must be >= 0, got {self.lam}")
        if self.temperature <= 0:
            raise ValueError(f"MemberSpec.temperature (T) must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"MemberSpec.alpha (α) must lie in [0, 1], got {self.alpha}")
        for name in ("lam", "temperature", "alpha"):  # YAML may give ints
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MemberSpec:
        """Build from a config mapping; accepts ``lambda``/``lambda_``/``lam`` and ``T``/``temperature``.

        Other keys are ignored; a missing field raises ``ValueError`` naming it.
        """
        values: dict[str, Any] = {}
        for key, value in cfg.items():
            name = _SPEC_ALIASES.get(str(key))
            if name is None:
                continue
            if name in values:
                raise ValueError(f"MemberSpec.{name} given twice (key {key!r})")
            values[name] = value
        missing = [f.name for f in fields(cls) if f.name not in values]
        if missing:
            raise ValueError(f"MemberSpec: missing field(s) {', '.join(missing)} in {dict(cfg)!r}")
        return cls(**values)


@dataclass(frozen=True)
class MemberRecipe:
    """Training budget and optimisers of one member (§1.3 table "Optimizers / schedule / budget").

    Member: SGD(``lr``, momentum 0.9, weight decay 5e-4), cosine. Inner attacker
    (``attacker_arch``, ``None`` = the member's own arch as in train.sh): SGD(``attacker_lr``,
    same momentum / decay), cosine. Per step the attacker accumulates ``a_iter`` gradients on one
    batch, then takes one step (§6 P9). Both gradients are clipped to norm ``clip_norm``.
    ``augmentation`` picks the attacker-stream transform (:data:`AUGMENTATIONS`). ``patience``
    (epochs without a better validation accuracy) stops early; ``None`` never stops.
    """

    epochs: int
    batch_size: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    attacker_arch: str | None = None
    attacker_lr: float = 0.01
    a_iter: int = 5
    clip_norm: float = 5.0
    augmentation: str = "auto"
    patience: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "a_iter"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"MemberRecipe.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "attacker_lr", "clip_norm"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"MemberRecipe.{name} must be > 0, got {getattr(self, name)}")
        if self.attacker_arch is not None and self.attacker_arch not in ARCHITECTURES:
            raise ValueError(f"MemberRecipe.attacker_arch: unknown architecture {self.attacker_arch!r}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(
                f"MemberRecipe.augmentation must be one of {AUGMENTATIONS}, got {self.augmentation!r}"
            )
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"MemberRecipe.patience must be >= 1 or None, got {self.patience}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MemberRecipe:
        """Build from a config mapping (unknown keys are ignored, like :class:`SGDRecipe`)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


# ----------------------------------------------------------------------------------------------
# Losses (§1.3)
# ----------------------------------------------------------------------------------------------


def kl_from_logits(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(softmax(p) ‖ softmax(q)) = Σ_k p_k (log p_k − log q_k), summed over classes, mean over batch."""
    log_p = F.log_softmax(p_logits.float(), -1)
    log_q = F.log_softmax(q_logits.float(), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def imitation_loss(member_logits_attack: Tensor, attacker_logits_attack: Tensor) -> Tensor:
    """Inner attacker objective L_A = KL(softmax(d(x_aug)) ‖ softmax(a(x_aug))), ``d`` detached (§1.3)."""
    return kl_from_logits(member_logits_attack.detach(), attacker_logits_attack)


def member_loss(
    member_logits_benign: Tensor,
    teacher_logits_benign: Tensor,
    labels: Tensor,
    member_logits_attack: Tensor,
    attacker_logits_attack: Tensor,
    spec: MemberSpec,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The member (defense) objective L_D of §1.3, batch means, float32.

    ``L_D = α·T²·KL(softmax(t(x)/T) ‖ softmax(d(x)/T)) + (1 − α)·CE(d(x), y)
    − λ·KL(softmax(d(x_aug)) ‖ softmax(a(x_aug)))``

    Directions, as in the reference: the distillation KL has the **teacher** first (forward KL of
    Hinton KD, the target distribution weights the log-ratio); the divergence term has the
    **member** first — the same direction as the inner attacker's imitation loss
    (:func:`imitation_loss`), so the member maximises exactly the quantity the attacker minimises.
    The teacher and the attacker logits are detached; gradients flow into the member only. The
    original clamps teacher probabilities at 1e-10 and member probabilities at 1e-7; here both
    KLs use ``log_softmax`` (finite without clamps).

    Returns ``(total, parts)`` with detached ``parts``: ``kd`` (the soft KL, without α·T²),
    ``ce``, ``div`` (the member–attacker KL) and ``total``.
    """
    T = float(spec.temperature)
    kd = kl_from_logits(teacher_logits_benign.detach() / T, member_logits_benign / T)
    ce = F.cross_entropy(member_logits_benign.float(), labels)
    div = kl_from_logits(member_logits_attack, attacker_logits_attack.detach())
    total = spec.alpha * T * T * kd + (1.0 - spec.alpha) * ce - spec.lam * div
    parts = {"kd": kd.detach(), "ce": ce.detach(), "div": div.detach(), "total": total.detach()}
    return total, parts


# ----------------------------------------------------------------------------------------------
# Attacker-like queries (§1.3 "Attacker" stream)
# ----------------------------------------------------------------------------------------------

# §1.3: RandomResizedCrop(scale 0.8–1) → HFlip → ColorJitter(.4, .4, .4) → RandomGrayscale(.2)
# → RandomAffine(15°, translate .1, scale .9–1.1).
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
    """Attacker-like queries from a batch of benign normalised images ``x`` ``[B, C, H, W]`` (§1.3).

    MISLEADER simulates the attacker's query distribution by augmenting training images (no
    generator is used). The images are mapped back to pixel space [0, 1] with ``mean``/``std``
    (default 0.5/0.5, the input space of this package's 32-px and digits datasets), transformed,
    clamped and re-normalised. Every random number comes from ``rng`` (a ``torch.Generator`` on
    any device), so a seeded generator gives a reproducible batch; everything is batched.

    * ``cifar`` (§1.3 recipe): RandomResizedCrop(scale 0.8–1, ratio 3/4–4/3) → HFlip →
      RandomAffine(±15°, translate ±10 %, scale 0.9–1.1) as one bilinear resampling (zero =
      black fill), then ColorJitter(brightness/contrast/saturation 0.4, fixed order) and
      RandomGrayscale(0.2). (The original applies the jitter between flip and affine; jitter is
      pointwise, so only the fill colour of the affine's border differs.)
    * ``digits`` (1-channel data, §6 P13: no colour jitter, no flips): the same random affine,
      then a convex mix with another image of the batch (weight U(0, 0.4) of the partner) and
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
    n = x01.shape[0]
    if kind == "cifar":
        cfg = CIFAR_AUG
        x01 = _geometry(x01, rng, True, True, cfg["degrees"], cfg["translate"], cfg["scale"])
        x01 = _colour(x01.clamp(0, 1), rng)
    else:
        cfg = DIGITS_AUG
        x01 = _geometry(x01, rng, False, False, cfg["degrees"], cfg["translate"], cfg["scale"])
        perm = torch.randperm(n, generator=rng, device=rng.device).to(dev)
        w = _uniform(rng, n, 0.0, cfg["mix_max"], dev).view(n, 1, 1, 1)
        x01 = (1 - w) * x01 + w * x01[perm]
        sigma = _uniform(rng, n, 0.0, cfg["noise_max"], dev).view(n, 1, 1, 1)
        noise = torch.randn(x01.shape, generator=rng, device=rng.device).to(dev)
        x01 = (x01 + sigma * noise).clamp(0, 1)
    return ((x01 - m) / s).to(x.dtype)


# ----------------------------------------------------------------------------------------------
# Training one member (§1.3)
# ----------------------------------------------------------------------------------------------


def _loader(data: Dataset, batch_size: int, device: torch.device, workers: int, seed: int) -> DataLoader:
    n = len(data)  # type: ignore[arg-type]
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=n > batch_size and n % batch_size == 1,  # a batch of one breaks BatchNorm
    )


def _cycle(loader: DataLoader) -> Iterator[Tensor]:
    while True:
        for x, _ in loader:
            yield x


def _sgd(model: nn.Module, lr: float, recipe: MemberRecipe) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(), lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )


@torch.no_grad()
def _logits(model: nn.Module, x: Tensor, device: torch.device, batch_size: int = 512) -> Tensor:
    model.eval()
    outs = []
    for chunk in x.split(batch_size):
        with _autocast(device):
            outs.append(model(chunk.to(device)).float())
    return torch.cat(outs)


def _val_attack_images(val: Dataset, kind: str, seed: int, limit: int = 2048) -> Tensor:
    """A fixed attacker-like batch built from (up to ``limit``) validation images."""
    n = min(len(val), limit)  # type: ignore[arg-type]
    x = torch.stack([val[i][0] for i in range(n)])
    return attacker_like(x, torch.Generator().manual_seed(derive_seed(seed, "misleader", "val-attack")), kind)


def train_member(
    teacher: nn.Module,
    spec: MemberSpec,
    recipe: MemberRecipe,
    train_dataset: Dataset,
    val_dataset: Dataset,
    num_classes: int,
    in_channels: int,
    device: torch.device | str,
    seed: int,
    progress: bool = True,
) -> tuple[nn.Module, list[dict[str, float]], dict[str, Any]]:
    """Train one MISLEADER member against its inner attacker (§1.3) and select it on validation.

    Per benign batch ``(x, y)`` (one epoch = one pass over ``train_dataset``) with an
    attacker-like batch ``x_aug`` (:func:`attacker_like` of an independently shuffled pass over
    the same training data, cycled):

    1. inner attacker ``a`` (``recipe.attacker_arch``): ``a_iter`` forward/backward passes of
       :func:`imitation_loss` on the same ``x_aug`` with accumulated gradients, clip, one SGD step;
    2. member ``d``: :func:`member_loss` against the frozen teacher (eval mode, no grad) and the
       updated attacker (detached), clip, one SGD step.

    Both schedules are cosine over all steps. After every epoch: validation accuracy (model
    selection: the best one, earliest on ties, is returned — not the test set, §6 P10),
    agreement with the teacher, and the member–attacker KL on a fixed attacker-like batch built
    from the validation images (eval mode).

    Returns ``(member, history, info)``: the best member (eval mode, on ``device``); one row per
    epoch (``train_total``, ``train_kd``, ``train_ce``, ``train_div``, ``attacker_loss``, ``lr``,
    ``attacker_lr``, ``val_acc``, ``val_agreement``, ``val_attack_kl``, ``seconds``); and a
    summary (``best_epoch``, ``best_val_acc``, ``teacher_val_acc``, ``epochs_run``, ...).
    """
    dev = torch.device(device)
    start_all = time.perf_counter()
    attacker_arch = recipe.attacker_arch or spec.arch
    kind = recipe.augmentation
    torch.manual_seed(derive_seed(seed, "misleader", "member-init", spec.arch))
    member = prepare_model(build_model(spec.arch, num_classes, in_channels), dev)
    torch.manual_seed(derive_seed(seed, "misleader", "attacker-init", attacker_arch))
    attacker = prepare_model(build_model(attacker_arch, num_classes, in_channels), dev)
    teacher = prepare_model(teacher, dev).eval()

    benign = _loader(train_dataset, recipe.batch_size, dev, recipe.num_workers, derive_seed(seed, "benign"))
    attack_stream = _cycle(
        _loader(train_dataset, recipe.batch_size, dev, recipe.num_workers, derive_seed(seed, "attack"))
    )
    aug_rng = torch.Generator(device=dev).manual_seed(derive_seed(seed, "misleader", "attack-aug"))
    steps = recipe.epochs * len(benign)
    opt_d, opt_a = _sgd(member, recipe.lr, recipe), _sgd(attacker, recipe.attacker_lr, recipe)
    sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, T_max=max(1, steps))
    sched_a = torch.optim.lr_scheduler.CosineAnnealingLR(opt_a, T_max=max(1, steps))

    val_labels = dataset_labels(val_dataset)
    teacher_val = predict_probs(teacher, val_dataset, dev).argmax(-1)
    val_aug = _val_attack_images(val_dataset, kind, seed)

    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state = -1.0, 0, copy.deepcopy(member.state_dict())
    bar = tqdm(range(1, recipe.epochs + 1), desc=f"misleader {spec.arch}", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        member.train()
        attacker.train()
        sums = torch.zeros(5, device=dev)  # total, kd, ce, div, attacker loss (per-sample sums)
        seen = 0
        for x, y in benign:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            x_aug = attacker_like(next(attack_stream).to(dev, non_blocking=True), aug_rng, kind)
            with _autocast(dev):
                d_aug = member(x_aug)  # kept with its graph for the member step
            # 1. inner attacker: a_iter accumulated gradients on the same batch, one clipped step
            opt_a.zero_grad(set_to_none=True)
            a_loss = torch.zeros((), device=dev)
            for _ in range(recipe.a_iter):
                with _autocast(dev):
                    a_loss = imitation_loss(d_aug, attacker(x_aug))
                a_loss.backward()
            nn.utils.clip_grad_norm_(attacker.parameters(), recipe.clip_norm)
            opt_a.step()
            sched_a.step()
            # 2. member step against the teacher and the updated (detached) attacker
            with torch.no_grad(), _autocast(dev):
                t_logits = teacher(x)
                a_logits = attacker(x_aug)
            with _autocast(dev):
                d_logits = member(x)
            loss, parts = member_loss(d_logits, t_logits, y, d_aug, a_logits, spec)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(member.parameters(), recipe.clip_norm)
            opt_d.step()
            sched_d.step()
            row = torch.stack([parts["total"], parts["kd"], parts["ce"], parts["div"], a_loss.detach()])
            sums += row * len(x)
            seen += len(x)

        means = (sums / max(seen, 1)).tolist()
        probs = predict_probs(member, val_dataset, dev)
        val_acc = accuracy(probs, val_labels)
        kl = kl_from_logits(_logits(member, val_aug, dev), _logits(attacker, val_aug, dev))
        row_out = {
            "epoch": epoch,
            "lr": opt_d.param_groups[0]["lr"],
            "attacker_lr": opt_a.param_groups[0]["lr"],
            "train_total": means[0],
            "train_kd": means[1],
            "train_ce": means[2],
            "train_div": means[3],
            "attacker_loss": means[4],
            "val_acc": val_acc,
            "val_agreement": float((probs.argmax(-1) == teacher_val).double().mean()),
            "val_attack_kl": float(kl),
            "seconds": time.perf_counter() - start,
        }
        history.append(row_out)
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = copy.deepcopy(member.state_dict())
        bar.set_postfix(
            {k: round(v, 4) for k, v in row_out.items() if k in ("train_total", "val_acc", "val_attack_kl")}
        )
        if recipe.patience is not None and epoch - best_epoch >= recipe.patience:
            break

    member.load_state_dict(best_state)
    member.eval()
    info: dict[str, Any] = {
        "spec": asdict(spec),
        "recipe": asdict(recipe),
        "attacker_arch": attacker_arch,
        "augmentation": kind,
        "best_epoch": best_epoch,
        "best_val_acc": best_acc,
        "teacher_val_acc": float((teacher_val == val_labels).double().mean()),
        "epochs_run": len(history),
        "steps_per_epoch": len(benign),
        "seconds": time.perf_counter() - start_all,
    }
    return member, history, info


# ----------------------------------------------------------------------------------------------
# Ensemble (§1.5) and its storage
# ----------------------------------------------------------------------------------------------


class Ensemble(nn.Module):
    """Soft voting with equal weights over the members (§1.5): p(x) = (1/K) Σ_k softmax(d_k(x)).

    ``forward`` returns ``log(max(p(x), tiny))`` rather than ``p(x)``: the oracle (and every
    other consumer of a victim) applies ``softmax`` to the victim's output, and
    ``softmax(log p) = p / Σ_k p_k = p`` because ``p`` already sums to 1 — so the oracle answers
    exactly the soft vote (up to float rounding; the clamp at the smallest normal float32 only
    touches entries that are already 0 and adds at most K·1.2e-38 mass). Returning ``p`` itself
    would make the oracle answer ``softmax(p)``, a nearly uniform vector — the probability/logit
    confusion of the original attack code (§1.6, §6 P6). ``probs`` gives ``p`` directly.
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


def save_ensemble(
    ensemble: Ensemble,
    path: str | os.PathLike,
    member_archs: Sequence[str],
    dataset: str,
    num_classes: int,
    in_channels: int,
    extra_meta: Mapping[str, Any] | None = None,
) -> None:
    """Write all members into one safetensors file (keys ``member{i}.<param>``), atomically.

    String metadata: ``kind = "ensemble"``, ``member_archs`` (JSON list), ``dataset``,
    ``num_classes``, ``in_channels`` and ``extra_meta`` (non-string values JSON-encoded).
    """
    if len(member_archs) != len(ensemble.members):
        raise ValueError(f"{len(member_archs)} member archs for {len(ensemble.members)} members")
    state = {
        f"member{i}.{k}": v.detach().cpu().contiguous()
        for i, member in enumerate(ensemble.members)
        for k, v in member.state_dict().items()
    }
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (extra_meta or {}).items()}
    meta.update(
        {
            "kind": "ensemble",
            "member_archs": json.dumps(list(member_archs)),
            "dataset": dataset,
            "num_classes": str(num_classes),
            "in_channels": str(in_channels),
        }
    )
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(state, str(tmp), metadata=meta)


def load_ensemble(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[Ensemble, dict[str, str]]:
    """Rebuild an :class:`Ensemble` written by :func:`save_ensemble` (eval mode, on ``device``)."""
    with safe_open(str(path), framework="pt", device=str(device)) as fh:
        meta = fh.metadata() or {}
        state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    if meta.get("kind") != "ensemble":
        raise ValueError(f"{path}: not an ensemble file (metadata kind = {meta.get('kind')!r})")
    archs = json.loads(meta["member_archs"])
    num_classes, in_channels = int(meta["num_classes"]), int(meta["in_channels"])
    members = []
    for i, arch in enumerate(archs):
        prefix = f"member{i}."
        member = build_model(arch, num_classes, in_channels)
        member.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        members.append(member)
    return Ensemble(members).to(device).eval(), dict(meta)
