"""Fashion-MNIST without a network: Debian's ``dataset-fashion-mnist`` files, checked and laid out
where torchvision's reader expects them.

Fashion-MNIST (Xiao, Rasul and Vollgraf 2017: 60,000 training and 10,000 test images of 28×28
greyscale clothing, 10 classes, 6,000 training images per class) is a dataset of MAD (Orekondy et
al., ICLR 2020) and MAZE (Kariyappa et al., CVPR 2021). Debian ships the original IDX files,
gzipped, in the package ``dataset-fashion-mnist`` (:data:`DEBIAN_DIR`). :func:`install` decompresses
them into ``<root>/fashionmnist/FashionMNIST/raw/`` (torchvision's layout) and checks every
decompressed file against the MD5 sum and size of the original release (:data:`FILES`); when the
package is not installed, the caller downloads with torchvision instead and :func:`verify` checks
the same sums. A missing or corrupt file is a :class:`~msdefense.data.registry.DatasetMissingError`
naming the file and the two ways to get it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .registry import DatasetMissingError

#: where Debian's package ``dataset-fashion-mnist`` puts the gzipped IDX files
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
#: every decompressed file of the original release: MD5 and size in bytes
FILES = {
    "train-images-idx3-ubyte": ("f4a8712d7a061bf5bd6d2ca38dc4d50a", 47_040_016),
    "train-labels-idx1-ubyte": ("9018921c3c673c538a1fc5bad174d6f9", 60_008),
    "t10k-images-idx3-ubyte": ("8181f5470baa50b63fa0f6fddb340f0a", 7_840_016),
    "t10k-labels-idx1-ubyte": ("15d484375f8d13e6eb1aabb0c3f46965", 10_008),
}
HOW_TO_GET = (
    "install Debian's package (`apt-get install dataset-fashion-mnist`, the files land in "
    f"{DEBIAN_DIR}) or run the rule `prepare_dataset` for fashionmnist where there is network "
    "(torchvision downloads the same files)"
)


def raw_dir(root: str | os.PathLike) -> Path:
    """Where torchvision's FashionMNIST reader looks for the IDX files under the data root."""
    return Path(root) / "fashionmnist" / "FashionMNIST" / "raw"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def problem(path: Path, name: str | None = None) -> str | None:
    """Why the decompressed file ``path`` is not the release's file ``name`` (default: its own
    name), or None when it is."""
    md5, size = FILES[name or path.name]
    if not path.is_file():
        return "is missing"
    if path.stat().st_size != size:
        return f"has {path.stat().st_size:,} bytes, not the release's {size:,}"
    digest = _md5(path)
    if digest != md5:
        return f"has MD5 {digest}, not the release's {md5}"
    return None


def verify(root: str | os.PathLike) -> Path:
    """Check the four decompressed files under ``root`` against :data:`FILES`; their folder."""
    folder = raw_dir(root)
    for name in FILES:
        wrong = problem(folder / name)
        if wrong:
            raise DatasetMissingError(f"Fashion-MNIST file {folder / name} {wrong}; to get it, {HOW_TO_GET}")
    return folder


def install(root: str | os.PathLike, source: str | os.PathLike = DEBIAN_DIR) -> Path:
    """Decompress the gzipped release files of ``source`` into :func:`raw_dir` (each written
    atomically, its MD5 checked before it is kept); files already there and right are kept."""
    folder = raw_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = folder / name
        if problem(target) is None:
            continue
        packed = Path(source) / f"{name}.gz"
        if not packed.is_file():
            raise DatasetMissingError(f"Fashion-MNIST file {packed} is missing; to get it, {HOW_TO_GET}")
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(packed, "rb") as fh:
                shutil.copyfileobj(fh, out)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            Path(tmp).unlink(missing_ok=True)
            raise DatasetMissingError(
                f"Fashion-MNIST file {packed} cannot be decompressed ({type(exc).__name__}: {exc}); "
                f"to get it, {HOW_TO_GET}"
            ) from exc
        wrong = problem(Path(tmp), name)
        if wrong:
            Path(tmp).unlink(missing_ok=True)
            raise DatasetMissingError(
                f"Fashion-MNIST file {packed} decompresses to a file that {wrong}; to get it, {HOW_TO_GET}"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return folder  # every file checked: kept as it was, or decompressed and checked before its rename
