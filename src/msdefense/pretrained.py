"""ImageNet weights a 224-px model starts from (a config's ``pretrained: true``): where the local
copy lives, the one download (rule ``prepare_weights``), and loading its backbone into a model.

The architectures and the torchvision weights each starts from: :mod:`msdefense.models.imagenet`;
the file is read by the artifact layer's checked reader (:func:`read_torchvision_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from . import layout
from .artifacts import ArtifactError, PathLike, error_detail, writers
from .layout import WEIGHTS_FILE
from .models.imagenet import weights_url

#: The new head (and a replaced stem) that the pretrained file does not provide.
NOT_LOADED = ("fc.",)


def weights_file(root: str | Path, arch: str) -> Path:
    """The local copy of ``arch``'s ImageNet weights under the data root."""
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


def read_torchvision_weights(path: PathLike) -> dict[str, Tensor]:
    """The state dict of a torchvision weights file (``prepare_weights``), tensors only, no pickle."""
    rules = writers(path, layout.WEIGHTS_FILE)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises whatever its unpickler meets
        raise ArtifactError(
            path,
            f"is not a readable torchvision state dict ({error_detail(exc, path)}); delete it and fetch it again",
            rules,
        ) from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ArtifactError(
            path, "is not a readable torchvision state dict (not a mapping of tensors)", rules
        )
    return dict(state)
