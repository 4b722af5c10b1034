"""Fashion-MNIST offline: Debian's dataset-fashion-mnist files, decompressed into torchvision's
layout with the release's MD5 sums checked; missing or corrupt files named with the ways to get them."""

from __future__ import annotations

import collections
import gzip
from pathlib import Path

import pytest

from msdefense.data import fashion_mnist
from msdefense.data.download import prepare
from msdefense.data.paper import load_paper_dataset
from msdefense.data.registry import DatasetMissingError

DEBIAN = fashion_mnist.DEBIAN_DIR
needs_debian = pytest.mark.skipif(
    not all((DEBIAN / f"{name}.gz").is_file() for name in fashion_mnist.FILES),
    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)",
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    prepare("fashionmnist", root)
    return root


@needs_debian
def test_prepare_lays_out_the_release_files_and_the_reader_sees_60000_and_10000_images(
    prepared: Path,
) -> None:
    folder = fashion_mnist.raw_dir(prepared)
    assert sorted(p.name for p in folder.iterdir()) == sorted(fashion_mnist.FILES)
    assert all(fashion_mnist.problem(folder / name) is None for name in fashion_mnist.FILES)
    train = load_paper_dataset("fashionmnist", prepared, "train", False)
    test = load_paper_dataset("fashionmnist", prepared, "test", False)
    assert len(train) == 60_000 and len(test) == 10_000
    assert set(collections.Counter(train.labels.tolist()).values()) == {6_000}
    assert set(collections.Counter(test.labels.tolist()).values()) == {1_000}
    image, label = train[0]
    assert tuple(image.shape) == (1, 32, 32) and 0 <= label < 10


@needs_debian
def test_a_corrupt_decompressed_file_is_named_and_prepare_replaces_it(prepared: Path) -> None:
    labels = fashion_mnist.raw_dir(prepared) / "t10k-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one label changed: same size
    with pytest.raises(DatasetMissingError, match=r"t10k-labels-idx1-ubyte has MD5 .* not the release's"):
        fashion_mnist.verify(prepared)
    prepare("fashionmnist", prepared)
    assert labels.read_bytes() == good


def _fake_release(folder: Path, *, corrupt: str | None = None, missing: str | None = None) -> Path:
    folder.mkdir()
    for name in fashion_mnist.FILES:
        if name != missing:
            with gzip.open(folder / f"{name}.gz", "wb") as fh:
                fh.write(b"not the release" if name == corrupt else b"")
    return folder


@pytest.mark.parametrize("case", ["corrupt", "missing"])
def test_a_bad_source_file_is_refused_naming_it_and_both_ways_to_get_it(tmp_path: Path, case: str) -> None:
    name = "train-images-idx3-ubyte"  # the first the installer takes
    source = _fake_release(tmp_path / "src", **{case: name})
    with pytest.raises(DatasetMissingError) as err:
        fashion_mnist.install(tmp_path / "root", source)
    text = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in text and "prepare_dataset" in text
    why = "is missing" if case == "missing" else "decompresses to a file that has 15 bytes"
    assert f"{source / name}.gz {why}" in text
    assert not any(p.name.startswith(".") for p in fashion_mnist.raw_dir(tmp_path / "root").iterdir())


def test_nothing_partial_is_left_when_a_file_is_not_the_releases(tmp_path: Path) -> None:
    source = _fake_release(tmp_path / "src")
    with pytest.raises(DatasetMissingError, match="decompresses to a file that has 0 bytes"):
        fashion_mnist.install(tmp_path / "root", source)
    assert list(fashion_mnist.raw_dir(tmp_path / "root").iterdir()) == []
