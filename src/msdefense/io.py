"""Artifact I/O without pickle: safetensors weights, ``.npz`` arrays, JSON metrics.

Every writer goes through :func:`atomic_path`: the data lands in a temporary file in the
target directory, is flushed to the disk (``fsync``) and renamed into place, and the directory
is flushed after the rename, so neither an interrupted job nor a power cut leaves a partial
artifact that Snakemake would mistake for a finished one (a temporary file a kill left behind is
hidden, ``.<name>.*``, and removed by the next write of that artifact). The file gets the mode an ordinary
``open`` would give it (0666 less the umask: 0644 by default), not ``mkstemp``'s private 0600,
so a lab's group can read weights and tables on a shared filesystem. A file written where an
artifact of the layout lives records its provenance (:mod:`msdefense.provenance`): the
safetensors metadata key, the ``.npz`` array and the JSON records' key ``provenance``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import save
from torch import Tensor

from . import provenance


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a directory's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; if the block succeeds, flush it to the disk,
    rename it onto ``path`` and flush the directory (the rename itself)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix or target.suffix
    for stale in target.parent.glob(f".{target.name}.*{suffix}"):  # left by a killed write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        fsync_path(tmp_path)
        os.replace(tmp_path, target)
        fsync_path(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as JSON; a record (or each record of a list) at an artifact's path gets its
    provenance under the key ``provenance``."""
    prov = provenance.of_path(path)
    if prov is not None:
        if isinstance(obj, Mapping):
            obj = {**obj, provenance.KEY: prov}
        elif isinstance(obj, list) and all(isinstance(r, Mapping) for r in obj):
            obj = [{**r, provenance.KEY: prov} for r in obj]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (no object arrays allowed), with the array
    ``provenance`` at an artifact's path."""
    prov = provenance.of_path(path)
    if prov is not None:
        arrays = {**arrays, provenance.KEY: np.array(json.dumps(prov, sort_keys=True))}
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {key!r} has dtype object; only numeric/string arrays are stored")
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


def check_npz_size(path: str | os.PathLike) -> None:
    """Refuse an ``.npz`` whose arrays unpack to more than the file holds (the writer above never
    compresses): a small compressed file could otherwise claim gigabytes of memory."""
    import zipfile

    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    compressed = [m.filename for m in members if m.compress_type != zipfile.ZIP_STORED]
    unpacked = sum(m.file_size for m in members)
    if compressed or unpacked > size:
        raise ValueError(
            f"its arrays are compressed ({', '.join(compressed[:3]) or 'sizes'}: {unpacked:,} bytes unpacked "
            f"from a {size:,}-byte file); the workflow writes them uncompressed"
        )


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (no pickle), its size checked first (:func:`check_npz_size`)."""
    check_npz_size(path)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def safetensors_bytes(tensors: Mapping[str, Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """A safetensors file's bytes with the metadata keys in sorted order.

    ``safetensors`` stores the metadata in a hash map, so its key order (and the file's bytes)
    changes from one process to the next; re-serialising the JSON header with sorted keys makes
    identical tensors and metadata give identical bytes. The tensor data is left untouched.
    """
    raw = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=dict(metadata or {}))
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    meta = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta else {}) | dict(sorted(header.items()))
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    return len(text).to_bytes(8, "little") + text + raw[8 + size :]


def save_tensors(
    tensors: Mapping[str, Tensor], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` and string ``metadata`` as a byte-reproducible safetensors file, atomically
    (with the metadata key ``provenance`` at an artifact's path)."""
    prov = provenance.of_path(path)
    if prov is not None:
        metadata = {**(metadata or {}), provenance.KEY: json.dumps(prov, sort_keys=True)}
    data = safetensors_bytes(tensors, metadata)
    with atomic_path(path, suffix=".safetensors") as tmp:
        tmp.write_bytes(data)


def save_csv(frame: Any, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame (or a list of row dicts) as CSV, atomically."""
    import pandas as pd

    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
