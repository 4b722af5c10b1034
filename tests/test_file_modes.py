"""Artifacts respect the umask (0644 by default), as files written with ``open`` would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import pyplot as plt

from msdefense.io import save_arrays, save_csv, save_json, save_tensors
from msdefense.reporting.figures import save_figure


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_every_writer_gives_the_umask_mode(tmp_path: Path, umask: int) -> None:
    fig, _ = plt.subplots()
    writers = {
        "m.json": lambda p: save_json({"a": 1}, p),
        "a.npz": lambda p: save_arrays(p, {"x": np.zeros(3)}),
        "w.safetensors": lambda p: save_tensors({"w": torch.zeros(2)}, p),
        "t.csv": lambda p: save_csv(pd.DataFrame({"a": [1]}), p),
        "f.png": lambda p: save_figure(fig, p),
    }
    for name, write in writers.items():
        write(tmp_path / name)
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o666 & ~umask, f"{name}: {oct(mode)}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
