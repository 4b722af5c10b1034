"""Defense registry: each method is built by name from its config entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import Defense, check_probabilities
from .dcp import DCP
from .none import NoDefense


def _dcp(cfg: Mapping[str, Any], dataset: str) -> Defense:
    gamma = dict(cfg.get("gamma_by_dataset") or {}).get(dataset, cfg.get("gamma", 0.2))
    return DCP(gamma=gamma, nu=cfg.get("nu", 1000.0), clip_odds=cfg.get("clip_odds", True))


DEFENSES: dict[str, Callable[[Mapping[str, Any], str], Defense]] = {
    "None": lambda cfg, dataset: NoDefense(),
    "DCP": _dcp,
}


def build_defense(cfg: Mapping[str, Any], dataset: str) -> Defense:
    """Build the defense of config entry ``cfg`` (key ``method``) for a victim trained on ``dataset``."""
    method = cfg["method"]
    if method not in DEFENSES:
        raise KeyError(f"unknown defense method {method!r}; known: {', '.join(sorted(DEFENSES))}")
    return DEFENSES[method](cfg, dataset)


__all__ = ["DEFENSES", "DCP", "Defense", "NoDefense", "build_defense", "check_probabilities"]
