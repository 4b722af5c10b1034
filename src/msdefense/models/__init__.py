"""Model zoo: classifiers and generators, built by name through :mod:`msdefense.models.registry`.

Importing this package registers every architecture (the submodule imports below have that side effect).
"""

from msdefense.models import (  # noqa: F401  (imported for registration)
    cifar_resnet,
    densenet,
    generators,
    imagenet,
    lenet,
    mobilenet_v2,
    resnet_8x,
    wide_resnet,
)
from msdefense.models.registry import ARCHITECTURES, GENERATORS, build_generator, build_model

__all__ = ["ARCHITECTURES", "GENERATORS", "build_generator", "build_model"]
