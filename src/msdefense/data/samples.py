"""Small fabricated copies of the papers' datasets in their real on-disk formats, for rehearsals.

A rehearsal (``config/rehearsal.yaml``, :mod:`msdefense.rehearsal`) runs a paper config end to
end in minutes: :func:`write_sample` puts a few random images per split where ``prepare_dataset``
would download the real files, in the layout the real loaders read (CIFAR's Python batches, SVHN's
MATLAB files, MNIST's IDX files, GTSRB's PPM folders and CSV, CUB-200-2011's text indices, PASCAL
VOC's XML annotations), so the loaders, transforms and architectures of the paper run as they
would on the real data. CIFAR's official format is a Python pickle: it is written here, for these
fabricated arrays only, by :func:`_pickle_bytes` (the few opcodes a dict of lists of small ints and
strings needs, no ``pickle`` module); the package reads it through torchvision and never unpickles
anything else.
"""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from .paper import VOC_CLASSES

#: the datasets :func:`write_sample` can fabricate (every paper dataset of the registry)
SAMPLE_DATASETS = ("cifar10", "cifar100", "svhn", "mnist", "fashionmnist", "gtsrb", "cub200", "pascal")
#: written last: its presence marks a complete sample (a rerun after a kill writes it again)
COMPLETE = ".sample-complete"


def write_sample(name: str, root: Path, *, images: int, seed: int = 0) -> Path:
    """Fabricate ``images`` random images per split of dataset ``name`` under ``root / name``
    (labels cycle over the classes) and return that directory; a complete sample is kept."""
    if name not in SAMPLE_DATASETS:
        raise KeyError(f"no sample writer for dataset {name!r}; known: {', '.join(SAMPLE_DATASETS)}")
    if images < 2:
        raise ValueError(f"a sample needs at least 2 images per split, got {images}")
    target = Path(root) / name
    stamp = f"{images} random images per split (msdefense.data.samples)\n"
    if (target / COMPLETE).exists() and (target / COMPLETE).read_text() == stamp:
        return target
    if target.exists() and any(target.iterdir()) and not (target / COMPLETE).exists():
        raise FileExistsError(
            f"{target} holds files that are not a complete fabricated sample (real data?): a sample is "
            f"only written into an empty folder; give the rehearsal another data_root or empty {target}"
        )
    rng = np.random.default_rng(seed)
    WRITERS[name](target, images, rng)
    (target / COMPLETE).write_text(stamp)
    return target


def _pickle_bytes(obj: object) -> bytes:
    """``obj`` (dicts, lists, ints, strings) as a protocol-2 pickle, written opcode by opcode."""

    def encode(x: object) -> bytes:
        if isinstance(x, dict):
            items = b"".join(encode(k) + encode(v) for k, v in x.items())
            return b"}" + (b"(" + items + b"u" if items else b"")
        if isinstance(x, list):
            elems = b"".join(map(encode, x))
            return b"]" + (b"(" + elems + b"e" if elems else b"")
        if isinstance(x, int):
            return b"K" + bytes([x]) if 0 <= x < 256 else b"J" + struct.pack("<i", x)
        if isinstance(x, str):
            raw = x.encode()
            return b"X" + struct.pack("<I", len(raw)) + raw
        raise TypeError(f"cannot encode {type(x).__name__}")

    return b"\x80\x02" + encode(obj) + b"."


def _pixels(rng: np.random.Generator, n: int, h: int, w: int, c: int = 3) -> np.ndarray:
    return rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def _cifar(target: Path, n: int, rng: np.random.Generator, *, classes: int) -> None:
    if classes == 10:
        folder, key = target / "cifar-10-batches-py", "labels"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        meta = ("batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    else:
        folder, key = target / "cifar-100-python", "fine_labels"
        files = ["train", "test"]
        meta = ("meta", {"fine_label_names": [f"class{i}" for i in range(100)]})
    folder.mkdir(parents=True, exist_ok=True)
    train_files = len(files) - 1
    for j, filename in enumerate(files):
        count = n if filename in ("test_batch", "test") else max(1, -(-n // train_files))
        flat = _pixels(rng, count, 32, 32).transpose(0, 3, 1, 2).reshape(count, -1)
        labels = [(k + j) % classes for k in range(count)]
        (folder / filename).write_bytes(_pickle_bytes({"data": flat.tolist(), key: labels}))
    (folder / meta[0]).write_bytes(_pickle_bytes(meta[1]))


def _svhn(target: Path, n: int, rng: np.random.Generator) -> None:
    import scipy.io

    target.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x = _pixels(rng, n, 32, 32).transpose(1, 2, 3, 0)  # [32, 32, 3, N]
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(-1, 1)  # 10 encodes the digit 0
        scipy.io.savemat(target / f"{split}_32x32.mat", {"X": x, "y": y})


def _idx(target: Path, n: int, rng: np.random.Generator, *, folder: str) -> None:
    raw = target / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        images = _pixels(rng, n, 28, 28, 1)[..., 0]
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
        )
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def _gtsrb(target: Path, n: int, rng: np.random.Generator) -> None:
    for k in range(n):
        folder = target / "GTSRB" / "Training" / f"{k % 43:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pixels(rng, 1, 30 + k % 20, 32)[0]).save(folder / f"00000_{k:05d}.ppm")
    test_dir = target / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True, exist_ok=True)
    with open(target / "GT-final_test.csv", "w", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"])
        for k in range(n):
            w, h = 32, 30 + k % 20
            Image.fromarray(_pixels(rng, 1, h, w)[0]).save(test_dir / f"{k:05d}.ppm")
            writer.writerow([f"{k:05d}.ppm", w, h, 1, 1, w - 1, h - 1, k % 43])


def _cub200(target: Path, n: int, rng: np.random.Generator) -> None:
    cub = target / "CUB_200_2011"
    lines: dict[str, list[str]] = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    for i in range(1, 2 * n + 1):
        cls = (i - 1) // 2 % 200 + 1
        folder = f"{cls:03d}.Class_{cls}"
        rel = f"{folder}/Class_{cls}_{i:04d}.jpg"
        (cub / "images" / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pixels(rng, 1, 120 + i % 40, 160)[0]).save(cub / "images" / rel, quality=90)
        lines["images.txt"].append(f"{i} {rel}")
        lines["image_class_labels.txt"].append(f"{i} {cls}")
        lines["train_test_split.txt"].append(f"{i} {i % 2}")  # odd ids train, even ids test
    for filename, content in lines.items():
        (cub / filename).write_text("\n".join(content) + "\n")


def _pascal(target: Path, n: int, rng: np.random.Generator) -> None:
    vr = target / "VOCdevkit" / "VOC2012"
    for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
        (vr / sub).mkdir(parents=True, exist_ok=True)
    ids = {"train": [], "val": []}
    for k in range(2 * n):
        image_id = f"2008_{k:06d}"
        split = "train" if k < n else "val"
        ids[split].append(image_id)
        name = VOC_CLASSES[k % len(VOC_CLASSES)]
        obj = (
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            "<difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
            "</bndbox></object>"
        )
        (vr / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>{obj}</annotation>"
        )
        Image.fromarray(_pixels(rng, 1, 200, 260)[0]).save(vr / "JPEGImages" / f"{image_id}.jpg")
    for split, names in ids.items():
        (vr / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(names) + "\n")


WRITERS = {
    "cifar10": lambda t, n, r: _cifar(t, n, r, classes=10),
    "cifar100": lambda t, n, r: _cifar(t, n, r, classes=100),
    "svhn": _svhn,
    "mnist": lambda t, n, r: _idx(t, n, r, folder="MNIST"),
    "fashionmnist": lambda t, n, r: _idx(t, n, r, folder="FashionMNIST"),
    "gtsrb": _gtsrb,
    "cub200": _cub200,
    "pascal": _pascal,
}
