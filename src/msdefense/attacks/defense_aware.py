"""A defense-aware KnockoffNets attacker: it learns to undo the defense before training the clone.

In the spirit of D-DAE (Chen et al., "D-DAE: Defense-Penetrating Model Extraction Attacks", IEEE
S&P 2023) as ModelGuard (Tang et al., USENIX Security 2024) evaluates every defense with it;
re-implemented from the papers' description (docs/methods.md, "Defense-aware KnockoffNets").
The attacker knows the defense's algorithm and options (Kerckhoffs), not the victim, not the
defender's models and not the defender's random seed. It

1. trains ``shadows`` shadow models of the clone's architecture on its own labelled query images
   (the transfer set: the attacker's own data; no oracle query), cross-fitted: each is trained
   without one fold of the images and answers that fold, so every image's posterior comes from
   a model that never saw it, as the victim's answers to the attacker's queries do;
2. builds the defense's auxiliary models from its own data where the defense needs them
   (AdaptiveMisinformation's misinformation model; MAD's and GRAD's surrogates, distilled from
   its first shadow for the defense's ``surrogate_epochs``);
3. answers these posteriors through the defense, for every sweep value, and fits a restorer per
   value: a small network from a defended answer to the clean posterior (selected on a held-out
   tenth of the images);
4. trains the clone, as the naive attacker does, on the real oracle's answers mapped through the
   restorer.

Real-oracle queries: exactly the naive attacker's (the same stored answers to the same images);
queries to its shadows are its own and not counted. The restorer sees only the answer vector,
never the image or its label, so what the clone learns about the victim still comes through the
oracle. Where the defense's map is the identity (``None``) the attacker inverts it exactly and
trains on the answers themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from ..defenses import build_defense, required_aux_models
from ..models import build_model
from ..seeding import derive_seed, seed_everything
from ..training import SGDRecipe, distill, predict_probs, train_classifier
from .restorer import Restorer, fit_restorer, fit_restorers, restore  # noqa: F401  (re-exported)

#: the label kind of the defense-aware attacker's clones (``knockoff.labels``)
RESTORED = "restored"
#: methods whose answer is the posterior itself: inverted exactly, no restorer
IDENTITY_METHODS = ("None",)


@dataclass(frozen=True, kw_only=True)
class DefenseAwareConfig:
    """Shadow models, their recipe and the restorer (``knockoff.defense_aware``)."""

    shadows: int = 2
    recipe: SGDRecipe
    restorer_steps: int = 3000
    restorer_width: int = 128
    restorer_lr: float = 1e-3
    restorer_patience: int | None = 10

    def __post_init__(self) -> None:
        if (
            self.shadows < 1
            or self.restorer_steps < 1
            or self.restorer_width < 1
            or (self.restorer_patience is not None and self.restorer_patience < 1)
        ):
            raise ValueError(
                f"defense_aware: shadows, restorer_steps, restorer_width, restorer_patience must be >= 1, got {self}"
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> DefenseAwareConfig:
        """From ``knockoff.defense_aware`` (schema defaults filled in)."""
        return cls(
            shadows=int(cfg["shadows"]),
            recipe=SGDRecipe.from_config(cfg["shadow"]),
            restorer_steps=int(cfg["restorer_steps"]),
            restorer_width=int(cfg["restorer_width"]),
            restorer_lr=float(cfg["restorer_lr"]),
            restorer_patience=None if cfg.get("restorer_patience") is None else int(cfg["restorer_patience"]),
        )


def shadow_folds(n: int, folds: int, seed: int) -> list[Tensor]:
    """A random partition of ``range(n)`` into ``folds`` parts (the shadows' held-out folds)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [part.sort().values for part in order.tensor_split(folds)]


@dataclass(frozen=True, kw_only=True)
class AttackerModels:
    """What every model the attacker builds shares: the clone's architecture, the victim's class
    count and input channels, the recipe (:class:`DefenseAwareConfig`) and the device."""

    arch: str
    classes: int
    in_channels: int
    cfg: DefenseAwareConfig
    device: torch.device

    def fresh(self) -> nn.Module:
        return build_model(self.arch, self.classes, self.in_channels)


def train_shadows(
    images: Dataset, *, folds: Sequence[Tensor], models: AttackerModels, seed: int
) -> list[nn.Module]:
    """The attacker's shadow models, cross-fitted: shadow i is a fresh ``arch`` model trained on
    its own labelled (augmented) query images outside ``folds[i]``, from its own seed, so that its
    posteriors on ``folds[i]`` are those of a model that never saw these images, as the victim's
    answers to the attacker's queries are (with one shadow: trained on every image)."""
    shadows = []
    for i, held in enumerate(folds):
        s = derive_seed(seed, "shadow", i)
        seed_everything(s)
        model = models.fresh()
        keep = torch.ones(len(images), dtype=torch.bool)
        if len(folds) > 1:
            keep[held] = False
        train = Subset(images, keep.nonzero().flatten().tolist())
        train_classifier(
            model, train, {}, models.cfg.recipe, device=models.device, seed=s, desc=f"shadow {i}"
        )
        shadows.append(model.eval())
    return shadows


def attacker_aux_models(
    defense_cfg: Mapping[str, Any],
    *,
    images: Dataset,
    plain: Dataset,
    shadows: Sequence[nn.Module],
    models: AttackerModels,
    seed: int,
) -> dict[str, nn.Module]:
    """The auxiliary models the defense needs, built by the attacker from its own data: the
    misinformation model trained on its labelled images (AdaptiveMisinformation's loss), and
    surrogates distilled from its first shadow for the defense's epochs (``surrogate_e<n>``)."""
    out: dict[str, nn.Module] = {}
    for name in required_aux_models(defense_cfg):
        s = derive_seed(seed, "attacker-aux", name)
        seed_everything(s)
        model, recipe, device = models.fresh(), models.cfg.recipe, models.device
        if name == "misinformation":
            from ..defenses.adaptive_misinformation import misinformation_loss

            train_classifier(
                model, images, {}, recipe, device=device, seed=s, desc=name, loss_fn=misinformation_loss
            )
        elif name.startswith("surrogate_e"):
            stop = int(name.removeprefix("surrogate_e"))
            targets = predict_probs(shadows[0], plain, device)
            if stop:
                distill(model, images, targets, recipe, device=device, seed=s, desc=name, stop_after=stop)
        else:
            raise ValueError(f"the defense-aware attacker cannot build the auxiliary model {name!r}")
        out[name] = model.eval()
    return out


def restorers(
    defense_cfg: Mapping[str, Any],
    params: Sequence[float],
    *,
    dataset: str,
    images: Dataset,
    plain: Dataset,
    cfg: DefenseAwareConfig,
    arch: str,
    classes: int,
    in_channels: int,
    device: torch.device,
    seed: int,
    batch_size: int = 256,
) -> list[tuple[Restorer | None, dict[str, float]]]:
    """One restorer per sweep value (``None`` where the defense is inverted exactly) and its fit."""
    if defense_cfg["method"] in IDENTITY_METHODS:
        return [(None, {"l1_defended": 0.0, "l1_restored": 0.0}) for _ in params]
    if len(plain) < 2 * cfg.shadows:
        raise ValueError(
            f"the defense-aware attacker needs at least {2 * cfg.shadows} query images for "
            f"{cfg.shadows} cross-fitted shadows, got {len(plain)}"
        )
    models = AttackerModels(arch=arch, classes=classes, in_channels=in_channels, cfg=cfg, device=device)
    folds = shadow_folds(len(plain), cfg.shadows, derive_seed(seed, "shadow-folds"))
    shadows = train_shadows(images, folds=folds, models=models, seed=seed)
    aux = attacker_aux_models(
        defense_cfg, images=images, plain=plain, shadows=shadows, models=models, seed=seed
    )
    # the attacker's copy of the defense: same options, its own seed (Random's draws are not the defender's)
    defense = build_defense(
        defense_cfg, dataset, {k: m.to(device) for k, m in aux.items()}, derive_seed(seed, "attacker-defense")
    )
    x = torch.stack([plain[i][0] for i in range(len(plain))])
    clean = torch.empty(len(plain), classes)
    for shadow, held in zip(
        shadows, folds, strict=True
    ):  # every image answered by the shadow that never saw it
        clean[held] = predict_probs(shadow, x[held], device)
    parts = [
        defense.perturb(xb.to(device), pb.to(device), list(params)).cpu()
        for xb, pb in zip(x.split(batch_size), clean.split(batch_size), strict=True)
    ]
    defended = torch.cat(
        parts, 1
    ).float()  # [E, N, K]: one pair per image, so a held-out pair is a held-out image
    # one seed per value (DCP(β) and ReverseSigmoid(β) alike); all values fitted in one stacked model
    seeds = [derive_seed(seed, "restorer", repr(float(p))) for p in params]
    return fit_restorers(
        defended,
        clean,
        seeds=seeds,
        steps=cfg.restorer_steps,
        width=cfg.restorer_width,
        lr=cfg.restorer_lr,
        patience=cfg.restorer_patience,
    )
