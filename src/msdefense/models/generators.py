"""Image generators of the data-free extraction attacks DFME and MAZE.

Both map z ∈ R^nz to a **pre-tanh** image tensor [B, nc, image_size, image_size]; callers apply ``torch.tanh``
themselves (the zeroth-order estimators of DFME and MAZE perturb in pre-tanh space). Layout shared by both
(``init_size = image_size // 4``): Linear(nz → 128·s²) → reshape (128, s, s) → BN → nearest ×2 → conv3×3
128→128 → BN → LeakyReLU(0.2) → nearest ×2 → conv3×3 128→64 → BN → LeakyReLU(0.2) → conv3×3 64→nc → BN(nc).
Convs have biases; PyTorch default init; BN default eps / momentum.

Both classes take a width knob ``ngf`` (feature maps 2·ngf / ngf; the papers' width is ngf = 64, i.e. 128 / 64):
narrower generators (e.g. ngf = 16 → 32 / 16 maps) keep CPU-scale runs cheap. The builders pass it through as
``build_generator(name, nz, out_channels, image_size, ngf=...)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msdefense.models.one_channel_conv import one_channel_conv
from msdefense.models.registry import register_generator
from msdefense.models.upsample_conv import upsample_conv

# The feature maps run channels-last from the first reshape on: nearest upsampling, batch norm and
# oneDNN's convolutions are several times faster that way on the CPU for these few-channel maps
# (values equal up to float rounding; benchmarks/bench_workflow.py measures the DFME iteration).
# The second upsampling and its convolution run as one sub-pixel convolution where no gradient is
# taken on the CPU (msdefense.models.upsample_conv; half the work of the full-resolution one), and
# a last convolution to one channel (digits) as a depthwise one and a channel sum
# (msdefense.models.one_channel_conv), which oneDNN runs three times as fast.
CHANNELS_LAST = torch.channels_last


class GeneratorA(nn.Module):
    """DFME generator (Truong et al. 2021, CVPR; ``dfme/network/gan.py``, class ``GeneratorA``).

    ``ngf = 64`` → 2·ngf = 128 feature maps; final BN is affine-free. 2,329,091 params for nz=256, nc=3, 32 px.
    ``forward`` returns the pre-tanh image (the original's ``pre_x=True`` path).
    """

    def __init__(self, nz: int = 256, ngf: int = 64, nc: int = 3, img_size: int = 32) -> None:
        super().__init__()
        self.init_size = img_size // 4
        self.l1 = nn.Sequential(nn.Linear(nz, ngf * 2 * self.init_size**2))
        self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(ngf * 2))
        self.conv_blocks1 = nn.Sequential(
            nn.Conv2d(ngf * 2, ngf * 2, 3, stride=1, padding=1),
            nn.BatchNorm2d(ngf * 2),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.conv_blocks2 = nn.Sequential(
            nn.Conv2d(ngf * 2, ngf, 3, stride=1, padding=1),
            nn.BatchNorm2d(ngf),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ngf, nc, 3, stride=1, padding=1),
            nn.BatchNorm2d(nc, affine=False),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.l1(z.view(z.shape[0], -1))
        out = out.view(out.shape[0], -1, self.init_size, self.init_size).contiguous(
            memory_format=CHANNELS_LAST
        )
        img = F.interpolate(self.conv_blocks0(out), scale_factor=2)
        img = upsample_conv(self.conv_blocks2[0], self.conv_blocks1(img))
        bn, act, last, last_bn = list(self.conv_blocks2)[1:]
        return last_bn(one_channel_conv(last, act(bn(img))))


class Conv3Gen(nn.Module):
    """MAZE generator ``conv3_gen`` (Kariyappa et al. 2021, CVPR; ``src/models/conv3_gen.py``).

    Same layout as :class:`GeneratorA` with 128/64 maps (``ngf`` = 64) but an **affine** final BN; the original
    uses z = 100 and ``start_dim`` 8 (32 px) or 7 (28 px). 1,051,145 params for nz=100, nc=3, 32 px.
    ``forward`` returns ``x_pre``.
    """

    def __init__(self, nz: int = 100, out_channels: int = 3, img_size: int = 32, ngf: int = 64) -> None:
        super().__init__()
        self.start_dim = img_size // 4
        self.width = 2 * ngf
        self.linear = nn.Linear(nz, self.width * self.start_dim**2)
        self.bn0 = nn.BatchNorm2d(self.width)
        self.up1 = nn.Upsample(scale_factor=2)
        self.conv1 = nn.Conv2d(self.width, self.width, 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(self.width)
        self.relu1 = nn.LeakyReLU(0.2, inplace=True)
        self.up2 = nn.Upsample(scale_factor=2)
        self.conv2 = nn.Conv2d(self.width, ngf, 3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(ngf)
        self.relu2 = nn.LeakyReLU(0.2, inplace=True)
        self.conv3 = nn.Conv2d(ngf, out_channels, 3, stride=1, padding=1)
        self.bn3 = nn.BatchNorm2d(out_channels, affine=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z.view(z.shape[0], -1)).view(-1, self.width, self.start_dim, self.start_dim)
        x = x.contiguous(memory_format=CHANNELS_LAST)
        x = self.bn0(x)
        x = self.relu1(self.bn1(self.conv1(self.up1(x))))
        x = self.relu2(self.bn2(upsample_conv(self.conv2, x)))  # = conv2(up2(x))
        return self.bn3(one_channel_conv(self.conv3, x))


@register_generator("dfme")
def dfme_generator(nz: int = 256, out_channels: int = 3, image_size: int = 32, ngf: int = 64) -> GeneratorA:
    """DFME ``GeneratorA`` (paper width ngf 64, pre-tanh output; DFME default nz = 256)."""
    return GeneratorA(nz=nz, ngf=ngf, nc=out_channels, img_size=image_size)


@register_generator("maze")
def maze_generator(nz: int = 100, out_channels: int = 3, image_size: int = 32, ngf: int = 64) -> Conv3Gen:
    """MAZE ``conv3_gen`` (paper width ngf 64 → 128 / 64 maps, pre-tanh output; MAZE default nz = 100)."""
    return Conv3Gen(nz=nz, out_channels=out_channels, img_size=image_size, ngf=ngf)
