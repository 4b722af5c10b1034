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


KILLED_WRITER = """
import os, sys, time
from msdefense import io
real = os.replace
def stalled(src, dst):
    print("written", flush=True)
    time.sleep(600)  # killed here: between the write (flushed) and the rename
os.replace = stalled
io.save_json({"new": True}, sys.argv[1])
"""


def test_a_write_killed_before_its_rename_leaves_the_old_artifact_and_no_partial_one(tmp_path: Path) -> None:
    """A power cut's worst moment as far as this machine can stage it: the process dies after the
    data is written and flushed, before the rename. The old file is intact, the new one is only a
    hidden temporary file, and the next write of the artifact removes it."""
    import json
    import signal
    import subprocess
    import sys

    from msdefense.io import save_json

    target = tmp_path / "metrics.json"
    save_json({"old": True}, target)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert json.loads(target.read_text()) == {"old": True}
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "metrics.json")
    assert len(leftovers) == 1 and leftovers[0].startswith(".metrics.json.")
    assert json.loads((tmp_path / leftovers[0]).read_text()) == {"new": True}  # flushed before the kill
    save_json({"rerun": True}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    assert json.loads(target.read_text()) == {"rerun": True}


def test_the_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path: Path, monkeypatch) -> None:
    import os

    from msdefense import io

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + ("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    io.save_json({"a": 1}, tmp_path / "a.json")
    assert events == ["fsync file", "rename", "fsync dir"]
