"""Architecture registry: classifiers and generators are built by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..registry import file_under

# builder(num_classes, in_channels) -> nn.Module returning logits [B, num_classes]
ClassifierBuilder = Callable[[int, int], nn.Module]
# builder(nz, out_channels, image_size, **kwargs) -> nn.Module mapping z [B, nz] to pre-activation images
GeneratorBuilder = Callable[..., nn.Module]

B = TypeVar("B", bound=Callable[..., nn.Module])

ARCHITECTURES: dict[str, ClassifierBuilder] = {}
GENERATORS: dict[str, GeneratorBuilder] = {}


def _registrar(table: dict[str, B], kind: str, name: str) -> Callable[[B], B]:
    """A decorator that files a builder under ``name`` in ``table``, refusing duplicates."""

    def deco(fn: B) -> B:
        return file_under(table, name, fn, kind=kind)

    return deco


def register_architecture(name: str) -> Callable[[ClassifierBuilder], ClassifierBuilder]:
    return _registrar(ARCHITECTURES, "architecture", name)


def register_generator(name: str) -> Callable[[GeneratorBuilder], GeneratorBuilder]:
    return _registrar(GENERATORS, "generator", name)


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
