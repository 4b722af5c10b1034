"""A convolution with one output channel, as a depthwise convolution and a channel sum.

The data-free generators end in a 3×3 convolution to the image's channels: one for the digits.
oneDNN runs a one-output-channel convolution at a small fraction of its usual rate (1.6 ms for
the DFME generator's 8 → 1 maps at 32 × 32, batch 128, one CPU thread: as long as its 16 → 8
convolution, which has eight times the work). ``conv(x, w) = Σ_c conv(x_c, w_c)``: one depthwise
convolution (each input channel with its own 3×3 slice of w) followed by the sum over channels as
a matrix product takes about a third of that forward (0.57 ms), four fifths of it forward and
backward (``benchmarks/bench_workflow.py --only fastpaths``). The values are the convolution's up to float
rounding (the sums run in another order; tests/test_fast_paths.py checks them in float64).

Used on the CPU for plain floating-point tensors, with or without gradients; FX tracing, quantized
tensors, ``torch.func`` transforms and other devices call the module itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from msdefense.models.cpu_paths import plain_cpu_conv


def fast_path(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether :func:`one_channel_conv` computes ``conv(x)`` itself (else it calls ``conv``)."""
    return plain_cpu_conv(conv, x) and conv.out_channels == 1


def one_channel_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x)`` for a ``conv`` with one output channel: a depthwise convolution and a channel
    sum where :func:`fast_path` allows, else ``conv`` itself."""
    if not fast_path(conv, x):
        return conv(x)
    c = x.shape[1]
    per_channel = F.conv2d(
        x,
        conv.weight.reshape(c, 1, *conv.kernel_size),
        None,
        conv.stride,
        conv.padding,
        conv.dilation,
        groups=c,
    )
    n, _, h, w = per_channel.shape
    flat = per_channel.permute(0, 2, 3, 1).reshape(-1, c)  # no copy for channels-last maps
    summed = F.linear(flat, torch.ones(1, c, dtype=x.dtype), conv.bias)
    return summed.view(n, h, w, 1).permute(0, 3, 1, 2)
