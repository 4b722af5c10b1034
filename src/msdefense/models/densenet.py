"""CIFAR DenseNet-BC-121 (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017).

CIFAR adaptation used by MISLEADER (Cheng et al. 2025, ``cifar10_models/densenet.py``, a port of the
torchvision model): conv0 3×3 stride 1 (→64) + BN + ReLU + max-pool 3×3/2 (32→16 px);
dense blocks (6, 12, 24, 16) with growth rate 32 and bottleneck width 4·32, BN-ReLU-Conv ordering; transitions
halve the channels (compression 0.5) and average-pool by 2; final BN + ReLU, global average pool, Linear(1024 → K).
Init: conv Kaiming-normal, BN weight 1 / bias 0, Linear bias 0. Module names mirror torchvision
(``features.conv0``, ``features.denseblock1.denselayer1.norm1``, ..., ``classifier``). ``in_channels`` is free.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from msdefense.models.init import kaiming_init
from msdefense.models.registry import register_architecture


class DenseLayer(nn.Module):
    """Bottleneck layer BN-ReLU-conv1×1(bn_size·k)-BN-ReLU-conv3×3(k); returns only the ``k`` new maps."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(out)))


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; each sees the concatenation of the block input and all earlier outputs."""

    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_features + i * growth_rate, growth_rate, bn_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1×1 (channel compression) followed by 2×2 average pooling."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_features))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_features, out_features, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(nn.Module):
    """DenseNet-BC with a CIFAR stem (3×3 stride-1 conv, then 3×3/2 max-pool)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
    ) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(in_channels, num_init_features, 3, stride=1, padding=1, bias=False),
            norm0=nn.BatchNorm2d(num_init_features),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        n = num_init_features
        for i, num_layers in enumerate(block_config):
            layers[f"denseblock{i + 1}"] = DenseBlock(num_layers, n, growth_rate, bn_size)
            n += num_layers * growth_rate
            if i != len(block_config) - 1:
                layers[f"transition{i + 1}"] = Transition(n, n // 2)
                n //= 2
        layers["norm5"] = nn.BatchNorm2d(n)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Linear(n, num_classes)
        kaiming_init(self, mode="fan_in", zero_linear_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.classifier(torch.flatten(out, 1))


@register_architecture("densenet121")
def densenet121(num_classes: int = 10, in_channels: int = 3) -> DenseNet:
    """CIFAR DenseNet-BC-121 (MISLEADER ensemble member); 6,956,426 params at 10 classes."""
    return DenseNet(
        num_classes, in_channels, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64
    )
