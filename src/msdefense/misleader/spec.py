"""What one MISLEADER member is (:class:`MemberSpec`) and how it is trained (:class:`MemberRecipe`).

Field names follow the flags of ``Defense/train_defense.py`` in ``LabRAI/MISLEADER`` (Cheng et al.
2025); defaults and the paper's grid are in docs/methods.md (MISLEADER).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..models import ARCHITECTURES
from .augment import AUGMENTATIONS

_SPEC_ALIASES = {
    "arch": "arch",
    "lam": "lam",
    "lambda": "lam",
    "lambda_": "lam",
    "temperature": "temperature",
    "T": "temperature",
    "alpha": "alpha",
}


@dataclass(frozen=True)
class MemberSpec:
    """One member's architecture and loss weights (``--lambda_``, ``--T``, ``--alpha``).

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
    """Training budget and optimisers of one member.

    Member: SGD(``lr``, momentum 0.9, weight decay 5e-4), cosine. Inner attacker
    (``attacker_arch``, ``None`` = the member's own arch, as in MISLEADER's ``train.sh``):
    SGD(``attacker_lr``, same momentum / decay), cosine. Per step the attacker accumulates
    ``a_iter`` gradients on one batch, then takes one step. Both gradients are clipped to norm
    ``clip_norm``. ``augmentation`` picks the attacker-stream transform (:data:`AUGMENTATIONS`).
    ``patience`` (epochs without a better validation accuracy) stops early; ``None`` never stops.
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
