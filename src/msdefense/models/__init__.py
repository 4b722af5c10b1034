"""Model zoo: classifiers and generators, built by name through :mod:`msdefense.models.registry`.

The zoo's modules are imported on the first lookup of a name (:data:`~msdefense.models.registry.ZOO`).
"""

from msdefense.models.registry import ARCHITECTURES, GENERATORS, build_generator, build_model

__all__ = ["ARCHITECTURES", "GENERATORS", "build_generator", "build_model"]
