"""Defense registry: each method is built by name from its config entry.

A method declares which auxiliary models it needs (``aux_models(cfg)``: names such as
``"misinformation"`` or ``"surrogate_e10"``); the workflow trains them with their own rule and
passes them, loaded, to ``build(cfg, dataset, aux, seed)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .base import Defense, check_probabilities
from .dcp import DCP
from .none import NoDefense

Builder = Callable[[Mapping[str, Any], str, Mapping[str, nn.Module], int], Defense]


@dataclass(frozen=True)
class DefenseMethod:
    """A registered method: how to build it and which auxiliary models its config needs."""

    name: str
    build: Builder
    aux_models: Callable[[Mapping[str, Any]], tuple[str, ...]] = lambda cfg: ()


def gamma_for(cfg: Mapping[str, Any], dataset: str, default: float) -> float:
    """γ of a reverse-sigmoid method: ``gamma_by_dataset[dataset]``, else ``gamma``, else ``default``."""
    return float(dict(cfg.get("gamma_by_dataset") or {}).get(dataset, cfg.get("gamma", default)))


def _dcp(cfg: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return DCP(
        gamma=gamma_for(cfg, dataset, 0.2), nu=cfg.get("nu", 1000.0), clip_odds=cfg.get("clip_odds", True)
    )


DEFENSES: dict[str, DefenseMethod] = {}


def register(method: DefenseMethod) -> DefenseMethod:
    if method.name in DEFENSES:
        raise ValueError(f"defense method {method.name!r} registered twice")
    DEFENSES[method.name] = method
    return method


register(DefenseMethod("None", lambda cfg, dataset, aux, seed: NoDefense()))
register(DefenseMethod("DCP", _dcp))

# Each of these modules registers its method(s) with `register(DefenseMethod(...))` on import.
from . import adaptive_misinformation, grad, mad, random_perturbation, reverse_sigmoid  # noqa: E402, F401


def required_aux_models(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of the auxiliary models the defense config ``cfg`` needs."""
    return DEFENSES[cfg["method"]].aux_models(cfg)


def build_defense(
    cfg: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module] | None = None, seed: int = 0
) -> Defense:
    """Build the defense of config entry ``cfg`` (key ``method``) for a victim trained on ``dataset``."""
    method = cfg["method"]
    if method not in DEFENSES:
        raise KeyError(f"unknown defense method {method!r}; known: {', '.join(sorted(DEFENSES))}")
    aux = dict(aux or {})
    missing = [name for name in required_aux_models(cfg) if name not in aux]
    if missing:
        raise ValueError(f"defense {method!r} needs the auxiliary models {missing}")
    return DEFENSES[method].build(cfg, dataset, aux, seed)


__all__ = [
    "DCP",
    "DEFENSES",
    "Defense",
    "DefenseMethod",
    "NoDefense",
    "build_defense",
    "check_probabilities",
    "gamma_for",
    "register",
    "required_aux_models",
]
