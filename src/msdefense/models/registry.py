"""Architecture registry: classifiers and generators are built by name.

The zoo's modules (:data:`ZOO`) file their builders with the decorators below; they are imported
on the first lookup (:class:`msdefense.registry.Registry`), not by importing this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..registry import Registry

# builder(num_classes, in_channels) -> nn.Module returning logits [B, num_classes]
ClassifierBuilder = Callable[[int, int], nn.Module]
# builder(nz, out_channels, image_size, **kwargs) -> nn.Module mapping z [B, nz] to pre-activation images
GeneratorBuilder = Callable[..., nn.Module]

B = TypeVar("B", bound=Callable[..., nn.Module])

#: the modules of the model zoo (each files its builders when imported)
ZOO = (
    "msdefense.models.cifar_resnet",
    "msdefense.models.densenet",
    "msdefense.models.imagenet",
    "msdefense.models.lenet",
    "msdefense.models.mobilenet_v2",
    "msdefense.models.resnet_8x",
    "msdefense.models.wide_resnet",
)
GENERATOR_MODULES = ("msdefense.models.generators",)
ARCHITECTURES: Registry[ClassifierBuilder] = Registry(kind="architecture", modules=ZOO)
GENERATORS: Registry[GeneratorBuilder] = Registry(kind="generator", modules=GENERATOR_MODULES)


def _registrar(table: Registry[B], name: str) -> Callable[[B], B]:
    """A decorator that files a builder under ``name`` in ``table``, refusing duplicates."""

    def deco(fn: B) -> B:
        return table.file(name, fn)

    return deco


def register_architecture(name: str) -> Callable[[ClassifierBuilder], ClassifierBuilder]:
    return _registrar(ARCHITECTURES, name)


def register_generator(name: str) -> Callable[[GeneratorBuilder], GeneratorBuilder]:
    return _registrar(GENERATORS, name)


def build_model(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """Build the classifier ``name`` with ``num_classes`` outputs and ``in_channels`` inputs."""
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name](num_classes, in_channels)


def build_generator(
    name: str, nz: int, out_channels: int = 3, image_size: int = 32, **kwargs: Any
) -> nn.Module:
    """Build the generator ``name`` (DFME / MAZE) for ``out_channels``×``image_size``² images.

    ``kwargs`` go to the builder (e.g. ``ngf``, the width knob of both generators; default = paper width).
    """
    if name not in GENERATORS:
        raise KeyError(f"unknown generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name](nz, out_channels, image_size, **kwargs)
