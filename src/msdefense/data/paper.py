"""The papers' datasets: cifar10, cifar100, svhn, mnist, fashionmnist, gtsrb, cub200, pascal.

Those of Khaled et al. 2023 (ICMLA) and MISLEADER (Cheng et al. 2025); docs/methods.md (Datasets and
transfer sets).

Dataset ``name`` lives under ``root / name`` (e.g. ``resources/cifar10``), in the on-disk
format of its official release:

* cifar10 / cifar100, svhn, mnist / fashionmnist, gtsrb: read with ``torchvision.datasets``
  (``cifar-10-batches-py/``, ``cifar-100-python/``, ``{train,test}_32x32.mat``,
  ``MNIST/raw/*-idx?-ubyte``, ``FashionMNIST/raw/...``, ``GTSRB/Training/<class>/*.ppm`` +
  ``GTSRB/Final_Test/Images`` + ``GT-final_test.csv``; torchvision already names its GTSRB
  folder ``gtsrb``, so it is given ``root`` itself). CIFAR's official format is Python pickles,
  read by torchvision; this package never calls ``pickle``. All but gtsrb are then held in
  memory as uint8 tensors (:mod:`msdefense.data.in_memory`: the same items, no PIL per item).
* cub200: ``CUB_200_2011/`` of the official Caltech-UCSD Birds-200-2011 archive
  (:class:`CUB200`; label = class id − 1; official train/test split).
* pascal: ``VOCdevkit/VOC2012/`` of the official VOC 2012 trainval archive
  (:class:`PascalVOCClassification`; ``train`` image set for training, ``val`` for test).

The readers here never download: with files missing they raise
:class:`DatasetMissingError` naming the dataset, the expected path and how to obtain it.
Only :func:`msdefense.data.download.prepare` (the Snakemake rule ``prepare_dataset``, and a
registry loader called with ``download=True``) fetches data.

Integrity checks: torchvision verifies the MD5 of every CIFAR batch file and SVHN ``.mat`` on
each construction.  With ``download=False`` the loaders use subclasses whose checksums are
``None`` (torchvision's ``check_integrity`` then only tests presence); the MD5s are verified
when the data are fetched by :func:`prepare`, which uses the stock classes (torchvision checks
the archive's and then every file's MD5 there).  MNIST and GTSRB are only presence-checked by
torchvision anyway; Fashion-MNIST is prepared offline from Debian's ``dataset-fashion-mnist``
when it is installed, and its decompressed files' MD5s are checked either way
(:mod:`msdefense.data.fashion_mnist`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets as tvd

from . import fashion_mnist, in_memory
from .paper_specs import PAPER_DATASETS, TORCHVISION_DATASETS  # noqa: F401  (re-exported)
from .registry import DatasetMissingError
from .transforms import image_transform

SPLITS = ("train", "test")

PREPARE_HINT = (
    "run the Snakemake rule `prepare_dataset` for it (`snakemake --cores 1 <data root>/<name>/.prepared`) "
    "on a machine with network access; it downloads the dataset there (msdefense.data.download.prepare)"
)
CUB_PAGE = "Caltech-UCSD Birds-200-2011 (CUB-200-2011), https://www.vision.caltech.edu/datasets/cub_200_2011/"
VOC_PAGE = "PASCAL VOC 2012, http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ (VOCtrainval_11-May-2012.tar)"

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip


def dataset_dir(name: str, root: Path) -> Path:
    """Directory holding dataset ``name``: ``root / name``."""
    return Path(root) / name


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


class _ImageFiles(Dataset):
    """Labelled image files ``samples = [(path, label), ...]``, decoded as RGB and transformed on access."""

    samples: list[tuple[Path, int]]
    transform: Callable[[Image.Image], Any] | None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        with Image.open(path) as im:
            image = im.convert("RGB")
        return (self.transform(image) if self.transform else image), label


# --------------------------------------------------------------------------- CUB-200-2011


class CUB200(_ImageFiles):
    """CUB-200-2011 from its official folder layout (5,994 train / 5,794 test images).

    ``cub_root`` is the extracted ``CUB_200_2011`` folder with ``images.txt`` (``<id> <path>``),
    ``image_class_labels.txt`` (``<id> <class 1..200>``), ``train_test_split.txt``
    (``<id> <1 = train, 0 = test>``) and ``images/<class folder>/<file>.jpg``.
    Labels are 0-based (class id − 1), images are converted to RGB (a few are greyscale).
    """

    FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "images")

    def __init__(self, cub_root: Path, split: str, transform: Callable[[Image.Image], Any] | None = None):
        _check_split(split)
        self.root = Path(cub_root)
        missing = [self.root / f for f in self.FILES if not (self.root / f).exists()]
        if missing:
            raise DatasetMissingError(missing_message("cub200", self.root, missing))
        paths = self._table("images.txt")
        labels = self._table("image_class_labels.txt")
        is_train = self._table("train_test_split.txt")
        if not paths.keys() == labels.keys() == is_train.keys():
            raise ValueError(f"CUB-200-2011 metadata files under {self.root} list different image ids")
        want = "1" if split == "train" else "0"
        ids = sorted((i for i in paths if is_train[i] == want), key=int)
        self.samples = [(self.root / "images" / paths[i], int(labels[i]) - 1) for i in ids]
        self.targets = [label for _, label in self.samples]
        self.transform = transform

    def _table(self, filename: str) -> dict[str, str]:
        rows = (line.split(maxsplit=1) for line in (self.root / filename).read_text().splitlines())
        return {row[0]: row[1].strip() for row in rows if len(row) == 2}


def missing_message(name: str, root: Path, missing: list[Path]) -> str:
    """The error for dataset ``name`` (``cub200`` or ``pascal``) expected at ``root``, and how to obtain it."""
    shown = ", ".join(str(p) for p in missing)
    if name == "cub200":
        advice = (
            f". CUB-200-2011 cannot be downloaded automatically: download CUB_200_2011.tgz from the official page "
            f"{CUB_PAGE} and extract it into {root.parent}, so that {root}/images.txt, image_class_labels.txt, "
            "train_test_split.txt and images/<class folder>/<file>.jpg exist."
        )
    else:
        advice = (
            ", containing ImageSets/Main/{train,val}.txt, Annotations/*.xml and JPEGImages/*.jpg. To obtain it, "
            f"{PREPARE_HINT} (torchvision VOCDetection, year 2012, ~2 GB), or download it from the official "
            f"page {VOC_PAGE} and extract it into {root.parent.parent}."
        )
    return f"dataset {name!r} not found: expected {root} (missing: {shown}){advice}"


# --------------------------------------------------------------------------- PASCAL VOC 2012


class PascalVOCClassification(_ImageFiles):
    """VOC 2012 images with one class label each (20 classes; 5,717 ``train`` images).

    ``voc_root`` is ``VOCdevkit/VOC2012`` with ``ImageSets/Main/<image_set>.txt``,
    ``Annotations/<id>.xml`` and ``JPEGImages/<id>.jpg``.  ``label_rule``:

    * ``"argmax"`` (default, what the original computes, ``df/pascal.py::encode_labels``): the
      multi-hot vector of the *non-difficult* objects' classes is arg-maxed, i.e. the label is the
      lowest class index (alphabetical VOC order) among non-difficult objects, and 0 (aeroplane)
      when every object is difficult ("the first non-difficult object class", in class order).
    * ``"first"``: the class of the first non-difficult object in XML order (first object if all
      are difficult).

    Labels only matter for pascal's accuracy; as a transfer set it is labelled by the oracle.
    """

    def __init__(
        self,
        voc_root: Path,
        image_set: str,
        transform: Callable[[Image.Image], Any] | None = None,
        label_rule: str = "argmax",
    ):
        if label_rule not in ("argmax", "first"):
            raise ValueError(f"label_rule must be 'argmax' or 'first', got {label_rule!r}")
        self.root = Path(voc_root)
        split_file = self.root / "ImageSets" / "Main" / f"{image_set}.txt"
        missing = [
            p for p in (split_file, self.root / "Annotations", self.root / "JPEGImages") if not p.exists()
        ]
        if missing:
            raise DatasetMissingError(missing_message("pascal", self.root, missing))
        ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        self.samples = [
            (
                self.root / "JPEGImages" / f"{i}.jpg",
                voc_label(self.root / "Annotations" / f"{i}.xml", label_rule),
            )
            for i in ids
        ]
        self.targets = [label for _, label in self.samples]
        self.transform = transform


def voc_label(xml_path: Path, label_rule: str = "argmax") -> int:
    """Class index of one VOC annotation file (see :class:`PascalVOCClassification`)."""
    if not xml_path.exists():
        raise DatasetMissingError(f"dataset 'pascal': annotation {xml_path} is missing")
    objects = []
    for obj in ET.parse(xml_path).getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise ValueError(f"{xml_path}: unknown VOC class {name!r}")
        difficult = int((obj.findtext("difficult") or "0").strip() or 0) != 0
        objects.append((VOC_CLASSES.index(name), difficult))
    easy = [cls for cls, difficult in objects if not difficult]
    if label_rule == "argmax":
        return min(easy) if easy else 0
    if easy:
        return easy[0]
    if objects:
        return objects[0][0]
    raise ValueError(f"{xml_path}: no <object> in annotation")


# --------------------------------------------------------------------------- torchvision datasets


def _no_md5(files: list[list[str]]) -> list[list[Any]]:
    return [[filename, None] for filename, _ in files]


# Presence-checked readers for download=False: with the MD5s set to ``None`` torchvision's
# ``check_integrity`` only tests that the files exist (module-level classes, so that datasets stay
# picklable for spawned DataLoader workers).
class _CIFAR10Local(tvd.CIFAR10):
    train_list = _no_md5(tvd.CIFAR10.train_list)
    test_list = _no_md5(tvd.CIFAR10.test_list)
    meta: ClassVar[dict[str, Any]] = {**tvd.CIFAR10.meta, "md5": None}


class _CIFAR100Local(tvd.CIFAR100):
    train_list = _no_md5(tvd.CIFAR100.train_list)
    test_list = _no_md5(tvd.CIFAR100.test_list)
    meta: ClassVar[dict[str, Any]] = {**tvd.CIFAR100.meta, "md5": None}


class _SVHNLocal(tvd.SVHN):
    split_list: ClassVar[dict[str, list[Any]]] = {
        k: [url, filename, None] for k, (url, filename, _) in tvd.SVHN.split_list.items()
    }


class _GTSRB(tvd.GTSRB):
    """torchvision GTSRB whose training labels come from the class folder name (``00000``..``00042``).

    torchvision numbers the folders in sorted order, which equals the folder number only when all
    43 class folders are present; parsing the name is the same on the full data and also right
    on partial copies.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._split == "train":
            self._samples = [(path, int(Path(path).parent.name)) for path, _ in self._samples]


def _torchvision_dataset(name: str, root: Path, split: str, transform: Any, download: bool) -> Dataset:
    """Construct the torchvision dataset; ``download=False`` uses the presence-checked classes."""
    base, train = dataset_dir(name, root), split == "train"
    if name == "cifar10":
        cls = tvd.CIFAR10 if download else _CIFAR10Local
        return cls(base, train=train, transform=transform, download=download)
    if name == "cifar100":
        cls = tvd.CIFAR100 if download else _CIFAR100Local
        return cls(base, train=train, transform=transform, download=download)
    if name == "svhn":
        cls = tvd.SVHN if download else _SVHNLocal
        return cls(base, split=split, transform=transform, download=download)
    if name == "mnist":
        return tvd.MNIST(base, train=train, transform=transform, download=download)
    if name == "fashionmnist":
        return tvd.FashionMNIST(base, train=train, transform=transform, download=download)
    if name == "gtsrb":  # torchvision appends "gtsrb" itself
        return _GTSRB(Path(root), split=split, transform=transform, download=download)
    raise KeyError(f"{name!r} is not a torchvision paper dataset")


def expected_files(name: str, root: Path, split: str) -> list[Path]:
    """The files/folders a torchvision paper dataset needs on disk for ``split``."""
    base = dataset_dir(name, root)
    if name == "cifar10":
        d = base / "cifar-10-batches-py"  # torchvision checks both splits' files (one archive)
        return [d / f for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")]
    if name == "cifar100":
        d = base / "cifar-100-python"
        return [d / "train", d / "test", d / "meta"]
    if name == "svhn":
        return [base / f"{split}_32x32.mat"]
    if name in ("mnist", "fashionmnist"):  # torchvision requires both splits' raw files
        raw = base / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
        return [
            raw / f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
        ]
    if name == "gtsrb":
        if split == "train":
            return [base / "GTSRB" / "Training"]
        return [base / "GTSRB" / "Final_Test" / "Images", base / "GT-final_test.csv"]
    raise KeyError(f"{name!r} is not a torchvision paper dataset")


def _torchvision_missing(name: str, root: Path, missing: list[Path]) -> DatasetMissingError:
    shown = ", ".join(str(p) for p in missing)
    return DatasetMissingError(
        f"dataset {name!r} not found under {dataset_dir(name, root)} (download=False; missing: {shown}). "
        f"To obtain it, {fashion_mnist.HOW_TO_GET if name == 'fashionmnist' else PREPARE_HINT}."
    )


def _load_torchvision(name: str, root: Path, split: str, augment: bool) -> Dataset:
    _check_split(split)
    root = Path(root)
    missing = [p for p in expected_files(name, root, split) if not p.exists()]
    if missing:
        raise _torchvision_missing(name, root, missing)
    try:
        if name in in_memory.IN_MEMORY:  # the same items without a PIL decode per item
            return in_memory.from_torchvision(
                name, _torchvision_dataset(name, root, split, None, False), augment
            )
        return _torchvision_dataset(name, root, split, image_transform(name, augment), download=False)
    except RuntimeError as err:  # torchvision's "Dataset not found ..." / "... not found or corrupted"
        if "not found" not in str(err).lower():
            raise
        expected = expected_files(name, root, split)
        raise _torchvision_missing(name, root, [p for p in expected if not p.exists()] or expected) from err
    except FileNotFoundError as err:
        raise _torchvision_missing(name, root, [Path(err.filename or dataset_dir(name, root))]) from err


def _load_cub200(root: Path, split: str, augment: bool) -> Dataset:
    return CUB200(dataset_dir("cub200", root) / "CUB_200_2011", split, image_transform("cub200", augment))


def voc_root(root: Path) -> Path:
    """``root/pascal/VOCdevkit/VOC2012``."""
    return dataset_dir("pascal", root) / "VOCdevkit" / "VOC2012"


def _load_pascal(root: Path, split: str, augment: bool) -> Dataset:
    _check_split(split)
    image_set = "train" if split == "train" else "val"
    return PascalVOCClassification(voc_root(root), image_set, image_transform("pascal", augment))


# --------------------------------------------------------------------------- prepare / register


def load_paper_dataset(name: str, root: Path, split: str, augment: bool) -> Dataset:
    """The reader behind every paper dataset's spec (registered in :mod:`msdefense.data.paper_specs`,
    which runs :func:`msdefense.data.download.prepare` first when asked to download): never downloads."""
    if name == "cub200":
        return _load_cub200(root, split, augment)
    if name == "pascal":
        return _load_pascal(root, split, augment)
    return _load_torchvision(name, root, split, augment)
