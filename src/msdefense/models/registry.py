"""Architecture registry: classifiers and generators are built by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

# builder(num_classes, in_channels) -> nn.Module returning logits [B, num_classes]
ClassifierBuilder = Callable[[int, int], nn.Module]
# builder(nz, out_channels, image_size, **kwargs) -> nn.Module mapping z [B, nz] to pre-activation images
GeneratorBuilder = Callable[..., nn.Module]

ARCHITECTURES: dict[str, ClassifierBuilder] = {}
GENERATORS: dict[str, GeneratorBuilder] = {}


def register_architecture(name: str) -> Callable[[ClassifierBuilder], ClassifierBuilder]:
    def deco(fn: ClassifierBuilder) -> ClassifierBuilder:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHITECTURES[name] = fn
        return fn

    return deco


def register_generator(name: str) -> Callable[[GeneratorBuilder], GeneratorBuilder]:
    def deco(fn: GeneratorBuilder) -> GeneratorBuilder:
        if name in GENERATORS:
            raise ValueError(f"generator {name!r} registered twice")
        GENERATORS[name] = fn
        return fn

    return deco


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
