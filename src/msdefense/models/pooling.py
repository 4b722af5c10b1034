"""Inference-time 2×2 max pooling by reshaping: the values of ``nn.MaxPool2d(2, 2)``, about ten
times faster on the CPU for LeNet-5's activations.

PyTorch's CPU max-pool kernel takes about 1.2 ms for a LeNet-5 activation of 128 × 6 × 28 × 28 on
one thread, as long as the convolution before it; the oracle and the students of the data-free
attacks run LeNet-5 without gradients thousands of times per run. Viewing each 2×2 window of a
channels-last activation as two pairs and taking two elementwise maxima gives the same values
(max is exact) in about 0.1 ms (``benchmarks/bench_workflow.py --only pooling``).

Only where no derivative is taken: with autograd recording, under ``torch.func`` transforms or
forward-mode AD, the module itself runs (its gradient goes to the first maximum of a window; the
elementwise maximum would split it on ties). Quantized tensors, FX tracing (quantization, GRAD's
propagation rules), odd sizes and other pooling settings also go to the module.
"""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn
from torch._C._functorch import is_functorch_wrapped_tensor
from torch.autograd.forward_ad import unpack_dual


def _plain_2x2(pool: nn.MaxPool2d) -> bool:
    def pair(v: object) -> tuple[object, ...]:
        return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[arg-type]

    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return (
        pair(pool.kernel_size) == (2, 2)
        and pair(stride) == (2, 2)
        and pair(pool.padding) == (0, 0)
        and pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
        and not pool.return_indices
    )


def fast_path(pool: nn.MaxPool2d, x: Tensor) -> bool:
    """Whether :func:`max_pool_2x2` computes ``pool(x)`` itself (else it calls ``pool``)."""
    if isinstance(x, fx.Proxy):  # symbolic tracing: record the module call
        return False
    return (
        not (torch.is_grad_enabled() and x.requires_grad)
        and not x.is_quantized
        and x.is_floating_point()
        and x.dim() == 4
        and x.shape[-1] % 2 == 0
        and x.shape[-2] % 2 == 0
        and not is_functorch_wrapped_tensor(x)
        and unpack_dual(x).tangent is None
        and _plain_2x2(pool)
    )


def max_pool_2x2(pool: nn.MaxPool2d, x: Tensor) -> Tensor:
    """``pool(x)`` for a plain 2×2, stride-2 ``pool``; computed by reshaping where no derivative
    is taken (:func:`fast_path`), channels-last in and out."""
    if not fast_path(pool, x):
        return pool(x)
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2, c)  # a copy unless channels-last
    pairs = torch.maximum(rows[:, :, 0], rows[:, :, 1])  # [N, H/2, W/2, 2, C]
    return torch.maximum(pairs[:, :, :, 0], pairs[:, :, :, 1]).permute(0, 3, 1, 2)
