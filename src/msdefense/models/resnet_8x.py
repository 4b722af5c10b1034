"""DFME's ``resnet18_8x`` / ``resnet34_8x``: Kuang-Liu style CIFAR ResNets at standard width.

Source: DAFL / DFME ``network/resnet_8x.py`` (Truong et al. 2021, DFME, CVPR), also used by MISLEADER:
3×3 stem conv (64 ch, stride 1) + BN + ReLU; four stages of BasicBlocks with 64/128/256/512 channels,
strides 1/2/2/2; 1×1 conv + BN projection shortcut where the shape changes; average pooling; Linear(512 → K).
"8x" is legacy DAFL naming, not an 8× width. Conv init Kaiming-normal (fan-out), BN weight 1 / bias 0.

Deviations from the original: ``in_channels`` is configurable (the original hard-codes 3), and pooling is
adaptive (identical to the original ``avg_pool2d(·, 4)`` on 32×32 inputs, but also valid on other sizes).
Module names (``conv1, bn1, layer1..4, linear``, ``shortcut`` in blocks) follow the original for checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msdefense.models.init import kaiming_init
from msdefense.models.registry import register_architecture


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers; projection shortcut (1×1 conv + BN) when stride or width changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet8x(nn.Module):
    """Four-stage CIFAR ResNet (64/128/256/512) with ``num_blocks`` BasicBlocks per stage."""

    def __init__(
        self, num_blocks: tuple[int, int, int, int], num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512, num_classes)
        kaiming_init(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(torch.flatten(out, 1))


@register_architecture("resnet18_8x")
def resnet18_8x(num_classes: int = 10, in_channels: int = 3) -> ResNet8x:
    """DFME student ResNet-18-8x, blocks [2, 2, 2, 2]; 11,173,962 params at 10 classes."""
    return ResNet8x((2, 2, 2, 2), num_classes, in_channels)


@register_architecture("resnet34_8x")
def resnet34_8x(num_classes: int = 10, in_channels: int = 3) -> ResNet8x:
    """DFME victim / MISLEADER teacher ResNet-34-8x, blocks [3, 4, 6, 3]; 21,282,122 params."""
    return ResNet8x((3, 4, 6, 3), num_classes, in_channels)
