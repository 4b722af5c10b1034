"""ImageNet-style torchvision ResNets for 224-px datasets (CUB-200, Caltech-256, ...).

Source: He et al., CVPR 2016 (torchvision ``resnet34`` / ``resnet50``); used by Khaled et al. 2023 (ICMLA) and
Mazeika et al. 2022 (GRAD², ICML) for CUB-200 victims / adversaries with a new ``fc`` head.

Builders never download anything: models are created with ``weights=None`` (random init) and a ``num_classes``
``fc`` head. The original experiments start from ImageNet-pretrained weights (a config's ``pretrained: true``):
:func:`msdefense.pretrained.fetch_weights` downloads torchvision's file once into ``<data.root>/weights/``
(the local rule ``prepare_weights``, never a job or a test), and :func:`msdefense.pretrained.load_backbone`
loads every tensor except ``fc`` from it.
For ``in_channels != 3`` the 7×7 stem ``conv1`` is replaced by a freshly initialised one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from msdefense.models.registry import register_architecture

if TYPE_CHECKING:
    from torchvision.models import ResNet


def _build(factory_name: str, num_classes: int, in_channels: int) -> ResNet:
    # torchvision is imported here, not at module level: importing it costs seconds (it pulls in
    # torch._dynamo) in every workflow job, and only the 224-px models need it.
    import torchvision.models

    model = getattr(torchvision.models, factory_name)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = model.conv1
        model.conv1 = nn.Conv2d(
            in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False
        )
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


@register_architecture("resnet34_imagenet")
def resnet34_imagenet(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """torchvision ResNet-34 (7×7/2 stem + max-pool), random init, ``fc`` 512→K (Khaled CUB-200 models)."""
    return _build("resnet34", num_classes, in_channels)


@register_architecture("resnet50_imagenet")
def resnet50_imagenet(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """torchvision ResNet-50 (bottleneck), random init, ``fc`` 2048→K (GRAD² / Mazeika CUB-200 models)."""
    return _build("resnet50", num_classes, in_channels)


#: The torchvision weights (``torchvision.models.<enum>.<member>``) each pretrainable architecture starts from.
PRETRAINED = {
    "resnet34_imagenet": ("ResNet34_Weights", "IMAGENET1K_V1"),
    "resnet50_imagenet": ("ResNet50_Weights", "IMAGENET1K_V1"),
}


def weights_url(arch: str) -> str:
    """Where torchvision publishes the ImageNet weights of ``arch`` (its weights metadata)."""
    if arch not in PRETRAINED:
        raise KeyError(
            f"architecture {arch!r} has no ImageNet weights; pretrainable: {', '.join(PRETRAINED)}"
        )
    import torchvision.models

    enum, member = PRETRAINED[arch]
    return getattr(getattr(torchvision.models, enum), member).url
