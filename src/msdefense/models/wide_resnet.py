"""Wide Residual Networks (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

Pre-activation layout (xternalz/WideResNet-pytorch, used by DFME ``network/wrn.py``, MAZE ``wresnet.py`` and
Khaled et al. ``df/wrn.py``): 3×3 stem conv (16 ch); three groups of ``n = (depth − 4) / 6`` blocks with widths
16k/32k/64k (strides 1/2/2); final BN + ReLU; global average pooling; Linear(64k → K). A block computes
``BN-ReLU → conv3×3 → BN-ReLU → dropout → conv3×3``; when input and output widths differ, the shortcut is a
1×1 conv applied to the *pre-activated* input (as in that code), otherwise the identity.
Init: conv Kaiming-normal (fan-out), BN weight 1 / bias 0, Linear bias 0.

Registered: ``wrn40_2`` (WRN-40-2, dropout 0.3 — the DFME adversary of Khaled et al. 2023, ``df/run_all.sh``)
and ``wrn22_2`` (WRN-22-2, dropout 0 — the clone ``wres22`` of Kariyappa et al. 2021, MAZE).
Pooling is adaptive (equals the original ``avg_pool2d(·, 8)`` on 32×32 inputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msdefense.models.init import kaiming_init
from msdefense.models.registry import register_architecture


class WideBasicBlock(nn.Module):
    """Pre-activation wide block: BN-ReLU-conv3×3-BN-ReLU-(dropout)-conv3×3 plus shortcut."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut: nn.Module | None = None
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        shortcut = x if self.convShortcut is None else self.convShortcut(pre)
        return out + shortcut


class NetworkBlock(nn.Module):
    """A group of ``nb_layers`` wide blocks; only the first changes width / resolution."""

    def __init__(
        self, nb_layers: int, in_planes: int, out_planes: int, stride: int, drop_rate: float
    ) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *[
                WideBasicBlock(
                    in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate
                )
                for i in range(nb_layers)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor`` with dropout ``drop_rate`` inside every block."""

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        widen_factor: int = 1,
        drop_rate: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6n+4 (16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], num_classes)
        kaiming_init(self, zero_linear_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.fc(torch.flatten(out, 1))


@register_architecture("wrn40_2")
def wrn40_2(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.3) -> WideResNet:
    """WRN-40-2, dropout 0.3 (Khaled et al. 2023, ``run_all.sh`` DFME adversary)."""
    return WideResNet(40, num_classes, widen_factor=2, drop_rate=drop_rate, in_channels=in_channels)


@register_architecture("wrn22_2")
def wrn22_2(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0) -> WideResNet:
    """WRN-22-2, dropout 0 (MAZE clone ``wres22``; 1,079,642 params at 10 classes)."""
    return WideResNet(22, num_classes, widen_factor=2, drop_rate=drop_rate, in_channels=in_channels)
