"""CIFAR MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

CIFAR adaptation used by MISLEADER (Cheng et al. 2025, ``cifar10_models/mobilenetv2.py``, a port of the
torchvision model): stem conv3×3 (→32) with **stride 1**; inverted-residual settings
(t, c, n, s) = (1,16,1,1), (6,24,2,**1**), (6,32,3,2), (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1); ReLU6;
residual when stride 1 and in = out; 1×1 conv → 1280; global mean pool; Dropout(0.2); Linear(1280 → K).
Init: conv Kaiming-normal (fan-out), BN weight 1 / bias 0, Linear N(0, 0.01) with bias 0.
Module names mirror torchvision (``features``, ``classifier``, ``conv`` in blocks). ``in_channels`` is free.
"""

from __future__ import annotations

import torch
from torch import nn

from msdefense.models.registry import register_architecture

# (expansion t, output channels c, repeats n, first stride s); 2nd row's stride changed 2 → 1 for 32×32 inputs.
CIFAR_INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) + BN + ReLU6, "same" padding."""

    def __init__(
        self, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """1×1 expansion (if t > 1) → depthwise 3×3 → linear 1×1 projection, residual when shapes match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with the CIFAR stride changes."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        setting: tuple[tuple[int, int, int, int], ...] = CIFAR_INVERTED_RESIDUAL_SETTING,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        input_channel, last_channel = 32, 1280
        features: list[nn.Module] = [ConvBNReLU(in_channels, input_channel, stride=1)]
        for t, c, n, s in setting:
            for i in range(n):
                features.append(InvertedResidual(input_channel, c, s if i == 0 else 1, t))
                input_channel = c
        features.append(ConvBNReLU(input_channel, last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(x)


@register_architecture("mobilenet_v2")
def mobilenet_v2(num_classes: int = 10, in_channels: int = 3) -> MobileNetV2:
    """CIFAR MobileNetV2 (MISLEADER ensemble member); 2,236,682 params at 10 classes."""
    return MobileNetV2(num_classes, in_channels)
