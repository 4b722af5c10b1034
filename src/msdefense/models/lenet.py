"""LeNet-5 family for 32×32 inputs (MNIST resized 28→32).

Source: LeCun et al. 1998 (LeNet-5), in the layout used by DAFL / DFME / MISLEADER (``network/lenet.py``).
The half and fifth-width variants are the MISLEADER MNIST ensemble members.
Unlike the originals (hard-coded 1 input channel and 10 classes), ``in_channels`` and ``num_classes`` are free.
"""

from __future__ import annotations

import torch
from torch import nn

from msdefense.models.point_conv import point_conv
from msdefense.models.pooling import max_pool_2x2
from msdefense.models.registry import register_architecture


class LeNet5(nn.Module):
    """conv5×5 c1 → ReLU → maxpool2 → conv5×5 c2 → ReLU → maxpool2 → conv5×5 c3 → ReLU → fc c3→f → ReLU → fc f→K.

    A 32×32 input is reduced to 1×1 by the third convolution, so ``c3`` is the flattened feature size.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        channels: tuple[int, int, int, int] = (6, 16, 120, 84),
    ) -> None:
        super().__init__()
        c1, c2, c3, f = channels
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size=5)
        self.relu1 = nn.ReLU(inplace=True)
        self.maxpool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.relu2 = nn.ReLU(inplace=True)
        self.maxpool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(c2, c3, kernel_size=5)
        self.relu3 = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(c3, f)
        self.relu4 = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(f, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the pools and conv3 stay modules (state dicts, FX graphs, quantization); the pools are
        # computed faster without gradients (msdefense.models.pooling), conv3 (1×1 output) as a
        # matrix product on the CPU (msdefense.models.point_conv)
        x = max_pool_2x2(self.maxpool1, self.relu1(self.conv1(x)))
        x = max_pool_2x2(self.maxpool2, self.relu2(self.conv2(x)))
        x = self.relu3(point_conv(self.conv3, x))
        x = torch.flatten(x, 1)
        return self.fc2(self.relu4(self.fc1(x)))


@register_architecture("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5, channels (6, 16, 120, 84); 61,706 params at 1 channel / 10 classes."""
    return LeNet5(num_classes, in_channels, (6, 16, 120, 84))


@register_architecture("lenet5half")
def lenet5half(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """Half-width LeNet-5, channels (3, 8, 60, 42); 15,738 params (MISLEADER MNIST member)."""
    return LeNet5(num_classes, in_channels, (3, 8, 60, 42))


@register_architecture("lenet5fifth")
def lenet5fifth(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """Narrow LeNet-5, channels (4, 10, 30, 30); 9,884 params (MISLEADER MNIST member)."""
    return LeNet5(num_classes, in_channels, (4, 10, 30, 30))
