"""Where the CPU fast paths of the package's layers may compute a convolution themselves.

:mod:`.point_conv`, :mod:`.one_channel_conv` and :mod:`.upsample_conv` replace a layer by an
equivalent computation (equal up to float rounding) only for a plain ``nn.Conv2d`` on a plain
floating-point CPU tensor. FX tracing must record the module (quantization and GRAD's
propagation rules read it), quantized tensors and ``torch.func`` transforms have their own
kernels, and the speed-ups were measured on the CPU only.
"""

from __future__ import annotations

from torch import Tensor, fx, nn
from torch._C._functorch import is_functorch_wrapped_tensor


def plain_cpu_conv(conv: nn.Conv2d, x: Tensor) -> bool:
    """``conv`` is a plain ungrouped zero-padded ``nn.Conv2d`` and ``x`` a 4-D floating-point CPU
    tensor of its weight's dtype, neither traced, quantized nor inside a ``torch.func`` transform."""
    if isinstance(x, fx.Proxy):  # symbolic tracing: record the module call
        return False
    return (
        type(conv) is nn.Conv2d
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.is_floating_point()
        and not x.is_quantized
        and not is_functorch_wrapped_tensor(x)
        and conv.weight.dtype == x.dtype
    )
