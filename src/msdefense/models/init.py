"""Weight initialisation shared by the CNN builders."""

from __future__ import annotations

from torch import nn


def kaiming_init(model: nn.Module, mode: str = "fan_out", zero_linear_bias: bool = False) -> None:
    """Kaiming-normal convolutions (``mode``), BatchNorm γ = 1 and β = 0, optionally zero Linear biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif zero_linear_bias and isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
