"""Nearest ×2 upsampling followed by a 3×3 convolution, as one 2×2 convolution at the low
resolution (the sub-pixel form).

On a nearest-upsampled map each output pixel of a 3×3, padding-1 convolution reads only a 2×2
block of the low-resolution map, with the 3×3 taps summed per block: rows (and columns) of the
kernel combine as [k₀, k₁ + k₂] for an even output row and [k₀ + k₁, k₂] for an odd one. The four
(row, column) parities become four groups of output channels of one 2×2 convolution over the
zero-padded low-resolution map, interleaved afterwards: about half the multiply-adds of the 3×3
convolution at full resolution, and no upsampled map.

Only without gradients, on the CPU: the data-free generators' batches for the student steps
(:mod:`msdefense.attacks.datafree`) take 1.5 instead of 3.1 ms for the DFME generator's second
upsampling and convolution at batch 128, 16 → 8 maps, one thread; with gradients the backward
pass costs what the forward saves (``benchmarks/bench_workflow.py --only fastpaths``). The values
are the convolution's up to float rounding (the taps are summed first; tests/test_fast_paths.py
checks them in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.forward_ad import unpack_dual

from msdefense.models.cpu_paths import plain_cpu_conv

# PHASE_TAPS[parity, block, tap]: which of the 3 kernel taps (one axis) fall on low-resolution
# block 0 or 1 of the 2×2 window, for an even (0) or odd (1) output row or column
_PHASE_TAPS = torch.tensor(
    [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
        [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ]
)


def fast_path(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether :func:`upsample_conv` computes ``conv(upsample(x))`` itself."""
    return (
        not torch.is_grad_enabled()
        and plain_cpu_conv(conv, x)
        and unpack_dual(x).tangent is None
        and tuple(conv.kernel_size) == (3, 3)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.padding) == (1, 1)  # type: ignore[arg-type]
        and tuple(conv.dilation) == (1, 1)
    )


def phase_weights(weight: Tensor) -> Tensor:
    """The 2×2 kernels ``[4·C_out, C_in, 2, 2]`` of the four output parities (row-major: (0, 0),
    (0, 1), (1, 0), (1, 1)) of a 3×3 ``weight`` applied to a nearest ×2 upsampled map."""
    taps = _PHASE_TAPS.to(weight)
    kernels = torch.einsum("aik,bjl,ockl->abocij", taps, taps, weight)  # [2, 2, O, C, 2, 2]
    return kernels.reshape(-1, *weight.shape[1:2], 2, 2)


def upsample_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(F.interpolate(x, scale_factor=2))`` (nearest) for a 3×3, stride-1, padding-1
    ``conv``; in the sub-pixel form where :func:`fast_path` allows, channels-last out."""
    if not fast_path(conv, x):
        return conv(F.interpolate(x, scale_factor=2))
    n, _, h, w = x.shape
    out_channels = conv.weight.shape[0]
    bias = None if conv.bias is None else conv.bias.repeat(4)
    z = F.conv2d(F.pad(x, (1, 1, 1, 1)), phase_weights(conv.weight), bias)  # [N, 4·O, h+1, w+1]
    out = z.new_empty(n, h, 2, w, 2, out_channels)
    for a in range(2):
        for b in range(2):
            block = z[:, (2 * a + b) * out_channels : (2 * a + b + 1) * out_channels]
            out[:, :, a, :, b] = block[:, :, a : a + h, b : b + w].permute(0, 2, 3, 1)
    return out.view(n, 2 * h, 2 * w, out_channels).permute(0, 3, 1, 2)
