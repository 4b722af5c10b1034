"""msdefense: reproduction package for defenses against model stealing (model extraction) of CNNs.

The library in a few names (docs/api.md): :func:`defend` puts a model behind a defense,
:func:`dataset_tensors` gives a dataset as tensors, :data:`DEFENSES` lists the methods and their
options, :class:`Oracle` is what the attacks query. They are imported on first use, so that
``import msdefense`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it, relative: no job reaches them through this file, so
#: they stay out of every job's code fingerprint (msdefense.fingerprint reads package names in text)
_EXPORTS = {
    "defend": ".api",
    "DefendedModel": ".api",
    "dataset_tensors": ".api",
    "DEFENSES": ".defenses",
    "Defense": ".defenses",
    "build_defense": ".defenses",
    "required_aux_models": ".defenses",
    "Oracle": ".oracle",
    "QueryBudgetExceeded": ".oracle",
    "build_model": ".models",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'msdefense' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
