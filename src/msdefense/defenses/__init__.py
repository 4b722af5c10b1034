"""Output-perturbation defenses, built by name from their config entry.

Each method module registers a :class:`DefenseMethod` on import (:mod:`.registry`, which imports a
built-in method's module, listed in its ``METHOD_MODULES``, on first lookup) that declares
its options once (:mod:`.options`: name, type, range or choices, default) and the auxiliary
models it needs (``"misinformation"``, ``"surrogate_e10"``); the workflow trains those with their
own rule and passes them, loaded, to :func:`build_defense`. Formulas, options and sources of
every method: docs/methods.md.
"""

from __future__ import annotations

from .base import Defense, check_probabilities
from .options import Option, OptionError
from .registry import (
    DEFENSES,
    METHOD_MODULES,
    DefenseMethod,
    build_defense,
    check_defense_config,
    defense_options,
    register,
    required_aux_models,
)

__all__ = [
    "DEFENSES",
    "METHOD_MODULES",
    "Defense",
    "DefenseMethod",
    "Option",
    "OptionError",
    "build_defense",
    "check_defense_config",
    "check_probabilities",
    "defense_options",
    "register",
    "required_aux_models",
]
