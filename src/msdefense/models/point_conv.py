"""A convolution whose kernel covers its whole input, as one matrix product.

LeNet-5's third convolution (5×5 kernel, 5×5 input, 1×1 output) is a fully connected layer
written as a convolution. oneDNN runs it as a general convolution: at batch 128 on one CPU thread
a LeNet-5 training step takes about 10% longer that way than with the same layer as ``F.linear``
over the flattened channels-last input (``benchmarks/bench_workflow.py --only fastpaths``). The
values are those of the convolution up to float rounding (the sums run in another order;
tests/test_fast_paths.py checks them in float64).

Used on the CPU for plain floating-point tensors, with or without gradients. FX tracing
(quantization, GRAD's propagation rules), quantized tensors, ``torch.func`` transforms, other
devices and any other geometry call the module itself.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from msdefense.models.cpu_paths import plain_cpu_conv


def fast_path(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether :func:`point_conv` computes ``conv(x)`` itself (else it calls ``conv``)."""
    return (
        plain_cpu_conv(conv, x)
        and tuple(x.shape[-2:]) == tuple(conv.kernel_size)
        and tuple(conv.padding) == (0, 0)  # type: ignore[arg-type]
        and tuple(conv.dilation) == (1, 1)
    )


def point_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x)`` for a ``conv`` whose kernel is the size of ``x``'s plane (a ``[N, C_out, 1, 1]``
    output), computed as ``F.linear`` where :func:`fast_path` allows, else by ``conv`` itself."""
    if not fast_path(conv, x):
        return conv(x)
    n, w = x.shape[0], conv.weight
    if w.is_contiguous():  # a model in the default layout: flatten (c, h, w), the weight a view
        flat, kernel = x.reshape(n, -1), w.reshape(w.shape[0], -1)
    else:  # channels-last input and weights (the workflow's models) flatten (h, w, c) as views
        flat, kernel = x.permute(0, 2, 3, 1).reshape(n, -1), w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
    # either way the weight's gradient comes back in the weight's own layout (contiguous for a
    # contiguous weight: ``p.grad.view(-1)``, ``parameters_to_vector`` work)
    out = F.linear(flat, kernel, conv.bias)
    return out.view(n, w.shape[0], 1, 1)
