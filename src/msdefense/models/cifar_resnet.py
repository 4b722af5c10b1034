"""CIFAR ResNet-20/32/56 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Sec. 4.2).

Layout: 3×3 stem conv (16 ch) + BN + ReLU; three stages of ``n = (depth − 2) / 6`` BasicBlocks with 16/32/64
channels (strides 1/2/2); global average pooling; Linear(64 → K).

Shortcuts: **option B** — a 1×1 conv (stride 2) + BN projection wherever the shape changes (first block of
stages 2 and 3), identity elsewhere. This follows the code of Khaled et al. (``df/model/resnet.py``, taken from
bearpaw/pytorch-classification), which this package reproduces (Khaled et al. 2023, ICMLA). The
paper's CIFAR experiments used parameter-free option-A (zero-padding) shortcuts instead. Parameter counts at
10 classes: ResNet-20/32/56 = 272,474 / 466,906 / 855,770 here (option B); option A would give 269,722 / 464,154 /
853,018 (2,752 fewer: the two projections 16→32 and 32→64 with their BNs).
Module names (``conv1, bn1, layer1..3, fc``, ``downsample`` in blocks) follow that code so its checkpoints load.

Naming trap: the Khaled code calls these networks ``resnet18`` / ``resnet34`` / ``resnet50``, but they are
ResNet-20 / ResNet-32 / ResNet-56; here they are registered under their true depths.

Init: conv weights Kaiming-normal with fan-out (std √(2 / (k²·C_out))), BN weight 1 / bias 0, Linear default.
Pooling is adaptive (equals the original AvgPool(8) on 32×32 inputs).
"""

from __future__ import annotations

import torch
from torch import nn

from msdefense.models.init import kaiming_init
from msdefense.models.registry import register_architecture


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual connection (post-activation)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth ``6n + 2`` (option-B shortcuts, see module docstring)."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n+2 (20, 32, 44, 56, 110, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.in_planes = 16
        self.layer1 = self._make_layer(16, n, stride=1)
        self.layer2 = self._make_layer(32, n, stride=2)
        self.layer3 = self._make_layer(64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        kaiming_init(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(self.in_planes, planes, stride)]
        self.in_planes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_architecture("resnet20")
def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-20 (He et al. 2016); Khaled et al.'s ``resnet18`` (victim / surrogates)."""
    return CifarResNet(20, num_classes, in_channels)


@register_architecture("resnet32")
def resnet32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-32 (He et al. 2016); Khaled et al.'s ``resnet34`` (KnockoffNets adversary)."""
    return CifarResNet(32, num_classes, in_channels)


@register_architecture("resnet56")
def resnet56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet-56 (He et al. 2016); Khaled et al.'s ``resnet50``."""
    return CifarResNet(56, num_classes, in_channels)
