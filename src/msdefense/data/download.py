"""``prepare_dataset``'s work: make a paper dataset available under the data root (downloads
where there is network; Debian's Fashion-MNIST offline; CUB-200 checked, never downloaded)."""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets as tvd

from . import fashion_mnist
from .paper import (
    CUB200,
    PAPER_DATASETS,
    SPLITS,
    VOC_PAGE,
    _torchvision_dataset,
    dataset_dir,
    missing_message,
    voc_root,
)
from .registry import DatasetMissingError


def prepare(name: str, root: Path) -> Path:
    """Make dataset ``name`` available under ``root / name`` and return that directory.

    Downloads (network needed) the torchvision datasets and PASCAL VOC 2012 when absent, with
    torchvision's MD5 verification.  CUB-200-2011 cannot be downloaded: it is only checked, and
    a :class:`DatasetMissingError` explains the manual download when absent.
    """
    root = Path(root)
    target = dataset_dir(name, root)
    if name == "cub200":
        cub_root = target / "CUB_200_2011"
        missing = [cub_root / f for f in CUB200.FILES if not (cub_root / f).exists()]
        if missing:
            raise DatasetMissingError(missing_message("cub200", cub_root, missing))
        return target
    if name not in PAPER_DATASETS:
        raise KeyError(f"unknown paper dataset {name!r}; known: {', '.join(PAPER_DATASETS)}")
    if name == "fashionmnist" and fashion_mnist.DEBIAN_DIR.is_dir():
        fashion_mnist.install(root)  # offline: Debian's dataset-fashion-mnist, checked
        return target
    target.mkdir(parents=True, exist_ok=True)
    try:
        if name == "pascal":
            vr = voc_root(root)
            needed = [vr / "ImageSets" / "Main" / f"{s}.txt" for s in ("train", "val")]
            if not all(p.exists() for p in needed + [vr / "Annotations", vr / "JPEGImages"]):
                tvd.VOCDetection(target, year="2012", image_set="trainval", download=True)
        else:
            for split in SPLITS:
                _torchvision_dataset(name, root, split, None, download=True)
    except (RuntimeError, OSError) as err:
        raise DatasetMissingError(
            f"dataset {name!r}: could not download it into {target} ({type(err).__name__}: {err}); "
            f"`prepare_dataset` needs network access: run it where there is network, or copy the "
            f"official files into {target} in the layout torchvision expects"
            + (f", or download it manually from {VOC_PAGE}" if name == "pascal" else "")
            + (f", or {fashion_mnist.HOW_TO_GET.split(' or ')[0]}" if name == "fashionmnist" else "")
        ) from err
    if name == "fashionmnist":
        fashion_mnist.verify(root)  # the decompressed files' MD5s (torchvision checks the archives')
    return target
