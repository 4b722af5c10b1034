"""ImageNet-style torchvision ResNets for 224-px datasets (CUB-200, Caltech-256, ...).

Source: He et al., CVPR 2016 (torchvision ``resnet34`` / ``resnet50``); used by Khaled et al. 2023 (ICMLA) and
Mazeika et al. 2022 (GRAD², ICML) for CUB-200 victims / adversaries with a new ``fc`` head.

Builders never download anything: models are created with ``weights=None`` (random init) and a ``num_classes``
``fc`` head. The original experiments start from ImageNet-pretrained weights (a config's ``pretrained: true``):
:func:`fetch_weights` downloads torchvision's file once into ``<data.root>/weights/`` (the local rule
``prepare_weights``, never a job or a test), and :func:`load_backbone` loads every tensor except ``fc`` from it.
For ``in_channels != 3`` the 7×7 stem ``conv1`` is replaced by a freshly initialised one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
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
#: The new head (and a replaced stem) that the pretrained file does not provide.
NOT_LOADED = ("fc.",)


def weights_url(arch: str) -> str:
    """Where torchvision publishes the ImageNet weights of ``arch`` (its weights metadata)."""
    if arch not in PRETRAINED:
        raise KeyError(
            f"architecture {arch!r} has no ImageNet weights; pretrainable: {', '.join(PRETRAINED)}"
        )
    import torchvision.models

    enum, member = PRETRAINED[arch]
    return getattr(getattr(torchvision.models, enum), member).url


def weights_file(root: str | Path, arch: str) -> Path:
    """The local copy of ``arch``'s ImageNet weights under the data root."""
    from ..layout import WEIGHTS_FILE

    return Path(WEIGHTS_FILE.format(root=root, arch=arch))


def fetch_weights(root: str | Path, arch: str) -> Path:
    """Download ``arch``'s ImageNet weights into :func:`weights_file` (atomically, hash-checked)."""
    url = weights_url(arch)
    dst = weights_file(root, arch)
    if dst.is_file():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part")
    try:
        # torchvision's file names end in the first hex digits of the file's SHA-256
        torch.hub.download_url_to_file(url, str(tmp), hash_prefix=Path(url).stem.rsplit("-", 1)[-1])
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(
            f"could not download the ImageNet weights of {arch} from {url} ({exc}); "
            f"where there is network, download that file and save it as {dst}"
        ) from exc
    tmp.replace(dst)
    return dst


def load_backbone(model: nn.Module, path: str | Path, *, arch: str) -> nn.Module:
    """Load every tensor of a torchvision state-dict file into ``model`` except its head (``fc``).

    A tensor whose shape differs (the stem of a 1-channel model) keeps its fresh initialisation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights of {arch} not found at {path}: run the local rule "
            f"`snakemake --cores 1 {path}` where there is network, or download {weights_url(arch)} "
            f"and save it as {path}"
        )
    from .. import layout
    from ..artifacts import ArtifactError, read_torchvision_weights, writers

    state = read_torchvision_weights(path)
    own = model.state_dict()
    keep = {
        k: v
        for k, v in state.items()
        if not k.startswith(NOT_LOADED) and k in own and own[k].shape == v.shape
    }
    missing = [k for k in own if k not in keep and not k.startswith(NOT_LOADED) and k != "conv1.weight"]
    if missing:
        raise ArtifactError(
            path,
            f"does not hold {arch}'s backbone: missing {missing[:5]} (of {len(missing)})",
            writers(path, layout.WEIGHTS_FILE),
        )
    model.load_state_dict(keep, strict=False)
    return model
