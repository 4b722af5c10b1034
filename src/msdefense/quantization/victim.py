"""The int8 victim module and the quantized engine it runs under.

``torch.backends.quantized.engine`` is set explicitly around every quantization step and every
forward (the original code never set it), so x86 (server) and qnnpack (edge) victims run side by
side on one machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from .recipe import BACKENDS, MODES


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend not in torch.backends.quantized.supported_engines:
        raise RuntimeError(
            f"quantized engine {backend!r} is not available in this torch build "
            f"(supported: {torch.backends.quantized.supported_engines})"
        )


@contextmanager
def quantized_engine(backend: str) -> Iterator[None]:
    """Set ``torch.backends.quantized.engine`` to ``backend`` inside the block and restore it afterwards.

    The engine selects the int8 kernels (and the packing of weights), so quantization, conversion, loading and
    every forward of an int8 model must run under the backend it was made for.
    """
    _check_backend(backend)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = backend
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


class QuantizedVictim(nn.Module):
    """An int8 model usable wherever an fp32 victim is: ``softmax(victim(x))`` works.

    ``forward`` moves ``x`` to the CPU as float32 (int8 kernels exist only there), runs the converted
    GraphModule under its quantized engine without autograd (the GRAD/MAD defenses differentiate fp32
    surrogates, never the victim) and returns float32 logits on ``x``'s original device.

    ``.to()`` / ``.cuda()`` / ``.half()`` are no-ops (the int8 model stays on the CPU), so code that moves
    victims to the compute device needs no special case. ``mode`` and ``input_shape`` record how the model
    was made; :func:`quantized_state` stores them so :func:`rebuild_quantized` can rebuild the graph.
    """

    def __init__(
        self, model: nn.Module, backend: str, mode: str, input_shape: tuple[int, ...] | list[int]
    ) -> None:
        super().__init__()
        _check_backend(backend)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model = model.eval()
        self.backend = backend
        self.mode = mode
        self.input_shape = tuple(int(s) for s in input_shape)

    def forward(self, x: Tensor) -> Tensor:
        device = x.device
        with quantized_engine(self.backend), torch.no_grad():
            out = self.model(x.detach().to("cpu", torch.float32))
        return out.float().to(device)

    def train(self, mode: bool = True) -> QuantizedVictim:
        """Always stays in eval mode: an int8 model has no training behaviour."""
        return super().train(False)

    def _apply(self, fn: Any, recurse: bool = True) -> QuantizedVictim:
        # Device / dtype moves would break the quantized tensors and packed weights; keep them on the CPU.
        return self

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, mode={self.mode!r}, input_shape={self.input_shape}"
