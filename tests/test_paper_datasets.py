"""Paper dataset loaders on tiny fabricated copies in each dataset's real on-disk format (no network).

Pickle is used here only to write CIFAR's official batch format, which torchvision reads.
"""

from __future__ import annotations

import csv
import pickle
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from msdefense.data import download, paper
from msdefense.data import transforms as tf
from msdefense.data.registry import DATASETS, DatasetMissingError

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test: loaders must never download."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def bounds(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in tf.normalisation(name))
    return (0 - mean) / std - 1e-5, (1 - mean) / std + 1e-5


def check_item(name: str, item: tuple[torch.Tensor, int], shape: tuple[int, int, int]) -> None:
    x, y = item
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and tuple(x.shape) == shape
    assert isinstance(y, int)
    lo, hi = bounds(name)
    assert bool(((x >= lo) & (x <= hi)).all())


def load(name: str, root: Path, split: str, augment: bool = False):
    return DATASETS[name].loader(root, split, augment, False)


def pixels(n: int, h: int, w: int, c: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "classes", "channels", "size"),
    [
        ("cifar10", 10, 3, 32),
        ("cifar100", 100, 3, 32),
        ("svhn", 10, 3, 32),
        ("mnist", 10, 1, 32),
        ("fashionmnist", 10, 1, 32),
        ("gtsrb", 43, 3, 32),
        ("cub200", 200, 3, 224),
        ("pascal", 20, 3, 300),
    ],
)
def test_specs_registered(name: str, classes: int, channels: int, size: int) -> None:
    spec = DATASETS[name]
    assert (spec.num_classes, spec.in_channels, spec.image_size) == (classes, channels, size)
    assert spec.needs_download


# ----------------------------------------------------------------------------- CIFAR


def write_cifar(root: Path, name: str) -> dict[str, tuple[np.ndarray, list[int]]]:
    """CIFAR python-version layout: pickled dicts with ``data`` [N, 3072] (CHW-flattened) + labels."""
    if name == "cifar10":
        folder, label_key = root / "cifar10" / "cifar-10-batches-py", "labels"
        files = {f"data_batch_{i}": 1 for i in range(1, 6)} | {"test_batch": 2}
        meta = ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder, label_key = root / "cifar100" / "cifar-100-python", "fine_labels"
        files = {"train": 3, "test": 2}
        meta = ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    folder.mkdir(parents=True)
    written = {}
    for j, (filename, n) in enumerate(files.items()):
        images = pixels(n, 32, 32)
        labels = [(7 * j + k) % (10 if name == "cifar10" else 100) for k in range(n)]
        flat = images.transpose(0, 3, 1, 2).reshape(n, -1)
        (folder / filename).write_bytes(pickle.dumps({"data": flat, label_key: labels}))
        written[filename] = (images, labels)
    (folder / meta[0]).write_bytes(pickle.dumps(meta[1]))
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar(tmp_path: Path, name: str) -> None:
    written = write_cifar(tmp_path, name)
    test_file = "test_batch" if name == "cifar10" else "test"
    train_files = [f for f in written if f != test_file]
    train = load(name, tmp_path, "train")
    test = load(name, tmp_path, "test")
    assert len(train) == sum(len(written[f][1]) for f in train_files) and len(test) == 2
    assert [test[i][1] for i in range(2)] == written[test_file][1]
    assert [train[i][1] for i in range(len(train))] == [y for f in train_files for y in written[f][1]]
    images, _ = written[test_file]
    for i in range(2):
        check_item(name, test[i], (3, 32, 32))
        expected = torch.from_numpy(images[i]).permute(2, 0, 1).float() / 255 * 2 - 1
        assert torch.allclose(test[i][0], expected, atol=1e-6)  # channel order and normalisation
    check_item(name, load(name, tmp_path, "train", augment=True)[0], (3, 32, 32))
    clone = pickle.loads(pickle.dumps(test))  # picklable for spawned DataLoader workers
    assert torch.equal(clone[1][0], test[1][0])


# ----------------------------------------------------------------------------- SVHN


def test_svhn(tmp_path: Path) -> None:
    folder = tmp_path / "svhn"
    folder.mkdir()
    images = {"train": pixels(3, 32, 32), "test": pixels(2, 32, 32)}
    labels = {"train": [10, 1, 9], "test": [3, 10]}  # 10 encodes the digit 0
    for split in ("train", "test"):
        x = images[split].transpose(1, 2, 3, 0)  # [32, 32, 3, N]
        y = np.array(labels[split], dtype=np.uint8).reshape(-1, 1)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})
    train, test = load("svhn", tmp_path, "train"), load("svhn", tmp_path, "test")
    assert len(train) == 3 and len(test) == 2
    assert [train[i][1] for i in range(3)] == [0, 1, 9] and [test[i][1] for i in range(2)] == [3, 0]
    for i in range(2):
        check_item("svhn", test[i], (3, 32, 32))
        expected = torch.from_numpy(images["test"][i]).permute(2, 0, 1).float() / 255 * 2 - 1
        assert torch.allclose(test[i][0], expected, atol=1e-6)
    check_item("svhn", load("svhn", tmp_path, "train", augment=True)[2], (3, 32, 32))


# ----------------------------------------------------------------------------- MNIST / Fashion-MNIST


def write_idx(root: Path, name: str, values: dict[str, list[int]], labels: dict[str, list[int]]) -> None:
    """Raw idx files (``MNIST/raw/train-images-idx3-ubyte`` ...); image i is filled with ``values[i]``."""
    raw = root / name / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
    raw.mkdir(parents=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        n = len(values[split])
        images = np.stack([np.full((28, 28), v, dtype=np.uint8) for v in values[split]])
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
        )
        lab = np.array(labels[split], dtype=np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + lab.tobytes())


@pytest.mark.parametrize("name", ["mnist", "fashionmnist"])
def test_mnist_like(tmp_path: Path, name: str) -> None:
    values = {"train": [0, 255, 51], "test": [255, 0]}
    labels = {"train": [4, 9, 0], "test": [7, 2]}
    write_idx(tmp_path, name, values, labels)
    train, test = load(name, tmp_path, "train"), load(name, tmp_path, "test")
    assert len(train) == 3 and len(test) == 2
    assert [train[i][1] for i in range(3)] == labels["train"]
    assert [test[i][1] for i in range(2)] == labels["test"]
    for i in range(2):
        check_item(name, test[i], (1, 32, 32))
        assert torch.allclose(test[i][0], torch.full((1, 32, 32), values["test"][i] / 255 * 2 - 1), atol=1e-5)
    check_item(name, load(name, tmp_path, "train", augment=True)[2], (1, 32, 32))
    assert download.prepare(name, tmp_path) == tmp_path / name  # present: torchvision skips the download


# ----------------------------------------------------------------------------- GTSRB


def test_gtsrb_sizes_and_labels(tmp_path: Path) -> None:
    base = tmp_path / "gtsrb"
    sizes = [(15, 20), (60, 40), (250, 33)]  # (width, height): below the 24-px crop limit, and large
    classes = [0, 42, 42]
    for k, ((w, h), cls) in enumerate(zip(sizes, classes, strict=True)):
        folder = base / "GTSRB" / "Training" / f"{cls:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels(1, h, w)[0]).save(folder / f"00000_{k:05d}.ppm")
    (base / "GTSRB" / "Training" / "00042" / "GT-00042.csv").write_text("not an image\n")
    test_dir = base / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    rows = [("00000.ppm", 31, 17, 12), ("00001.ppm", 80, 64, 5)]
    with open(base / "GT-final_test.csv", "w", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"])
        for filename, w, h, cls in rows:
            Image.fromarray(pixels(1, h, w)[0]).save(test_dir / filename)
            writer.writerow([filename, w, h, 1, 1, w - 1, h - 1, cls])

    train = load("gtsrb", tmp_path, "train", augment=True)
    assert len(train) == 3
    assert sorted(train[i][1] for i in range(3)) == [0, 42, 42]  # folder number, not sorted position
    for _ in range(3):  # random crops: repeat to exercise different offsets
        for i in range(3):
            check_item("gtsrb", train[i], (3, 32, 32))
    test = load("gtsrb", tmp_path, "test")
    assert len(test) == 2 and [test[i][1] for i in range(2)] == [12, 5]
    for i in range(2):
        check_item("gtsrb", test[i], (3, 32, 32))
    assert download.prepare("gtsrb", tmp_path) == tmp_path / "gtsrb"  # present: no download


def test_gtsrb_train_transform_fixes_b6() -> None:
    tiny = Image.fromarray(pixels(1, 20, 15)[0])
    assert tuple(tf.train_transform("gtsrb")(tiny).shape) == (3, 32, 32)
    assert tuple(tf.train_transform("gtsrb", hflip=False)(tiny).shape) == (3, 32, 32)
    assert tuple(tf.test_transform("cifar10")(Image.fromarray(pixels(1, 40, 50)[0])).shape) == (3, 32, 32)


# ----------------------------------------------------------------------------- CUB-200-2011


def write_cub(root: Path) -> None:
    cub = root / "cub200" / "CUB_200_2011"
    entries = [  # id, class (1-based), folder, is_train, (w, h), mode
        (1, 1, "001.Black_footed_Albatross", 1, (300, 200), "RGB"),
        (2, 1, "001.Black_footed_Albatross", 0, (120, 160), "RGB"),
        (3, 200, "200.Common_Yellowthroat", 1, (250, 260), "L"),
        (4, 17, "017.Cardinal", 0, (500, 333), "RGB"),
    ]
    lines: dict[str, list[str]] = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    for i, cls, folder, is_train, (w, h), mode in entries:
        rel = f"{folder}/{folder.split('.')[1]}_{i:04d}.jpg"
        (cub / "images" / folder).mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(pixels(1, h, w)[0])
        (img.convert("L") if mode == "L" else img).save(cub / "images" / rel, quality=90)
        lines["images.txt"].append(f"{i} {rel}")
        lines["image_class_labels.txt"].append(f"{i} {cls}")
        lines["train_test_split.txt"].append(f"{i} {is_train}")
    for filename, content in lines.items():
        (cub / filename).write_text("\n".join(content) + "\n")


def test_cub200(tmp_path: Path) -> None:
    write_cub(tmp_path)
    train, test = load("cub200", tmp_path, "train"), load("cub200", tmp_path, "test")
    assert len(train) == 2 and len(test) == 2
    assert [train[i][1] for i in range(2)] == [0, 199] and [test[i][1] for i in range(2)] == [0, 16]
    for i in range(2):
        check_item("cub200", test[i], (3, 224, 224))
        check_item("cub200", train[i], (3, 224, 224))  # includes a greyscale JPEG -> RGB
    check_item("cub200", load("cub200", tmp_path, "train", augment=True)[1], (3, 224, 224))
    assert download.prepare("cub200", tmp_path) == tmp_path / "cub200"


# ----------------------------------------------------------------------------- PASCAL VOC 2012


def voc_xml(filename: str, objects: list[tuple[str, int]]) -> str:
    body = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{d}</difficult>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
        for n, d in objects
    )
    return f"<annotation><folder>VOC2012</folder><filename>{filename}</filename>{body}</annotation>"


VOC_ITEMS = {  # id: (split, objects, argmax label, first label)
    "2008_000001": ("train", [("person", 0), ("dog", 0)], 11, 14),  # dog(11) < person(14)
    "2008_000002": ("train", [("aeroplane", 1), ("tvmonitor", 0)], 19, 19),  # difficult ignored
    "2008_000003": ("train", [("cat", 1)], 0, 7),  # all difficult: original gives 0
    "2008_000004": ("val", [("sheep", 0)], 16, 16),
    "2008_000005": ("val", [("sofa", 0), ("bicycle", 0)], 1, 17),
}


def write_voc(root: Path) -> Path:
    vr = root / "pascal" / "VOCdevkit" / "VOC2012"
    for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
        (vr / sub).mkdir(parents=True)
    for k, (i, (_, objects, _, _)) in enumerate(VOC_ITEMS.items()):
        (vr / "Annotations" / f"{i}.xml").write_text(voc_xml(f"{i}.jpg", objects))
        Image.fromarray(pixels(1, 200 + 50 * k, 350)[0]).save(vr / "JPEGImages" / f"{i}.jpg")
    for split in ("train", "val"):
        ids = [i for i, v in VOC_ITEMS.items() if v[0] == split]
        (vr / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return vr


def test_pascal(tmp_path: Path) -> None:
    vr = write_voc(tmp_path)
    train, test = load("pascal", tmp_path, "train"), load("pascal", tmp_path, "test")
    assert len(train) == 3 and len(test) == 2
    assert [train[i][1] for i in range(3)] == [v[2] for v in VOC_ITEMS.values() if v[0] == "train"]
    assert [test[i][1] for i in range(2)] == [v[2] for v in VOC_ITEMS.values() if v[0] == "val"]
    for i in range(2):
        check_item("pascal", test[i], (3, 300, 300))
    aug = load("pascal", tmp_path, "train", augment=True)
    check_item("pascal", aug[0], (3, 300, 300))
    first = paper.PascalVOCClassification(vr, "train", label_rule="first")
    assert first.targets == [v[3] for v in VOC_ITEMS.values() if v[0] == "train"]
    assert download.prepare("pascal", tmp_path) == tmp_path / "pascal"  # present: no download


# ----------------------------------------------------------------------------- missing data


@pytest.mark.parametrize("name", paper.PAPER_DATASETS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_dataset_raises(tmp_path: Path, name: str, split: str) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load(name, tmp_path, split)
    message = str(info.value)
    assert name in message and str(tmp_path / name) in message
    assert "prepare_dataset" in message or "official page" in message


def test_partial_cifar_raises(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_3").unlink()
    for split in ("train", "test"):  # one archive: torchvision requires every batch for either split
        with pytest.raises(DatasetMissingError, match="data_batch_3"):
            load("cifar10", tmp_path, split)


def test_prepare_cub_explains_manual_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError, match="CUB_200_2011.tgz") as info:
        download.prepare("cub200", tmp_path)
    assert str(tmp_path / "cub200" / "CUB_200_2011") in str(info.value)


def test_bad_split(tmp_path: Path) -> None:
    for name in paper.PAPER_DATASETS:
        with pytest.raises(ValueError):
            load(name, tmp_path, "validation")


def test_stock_torchvision_checksums_untouched() -> None:
    """The presence-checked subclasses (download=False) must not weaken torchvision's own classes."""
    from torchvision import datasets as tvd

    assert all(md5 for _, md5 in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list) and tvd.CIFAR10.meta["md5"]
    assert (
        all(md5 for _, md5 in tvd.CIFAR100.train_list + tvd.CIFAR100.test_list) and tvd.CIFAR100.meta["md5"]
    )
    assert all(entry[2] for entry in tvd.SVHN.split_list.values())
