"""Kill and resume: SIGKILL of the whole run during a job, then the same command again (msdefense.launch).

The rerun must remove Snakemake's stale lock by itself, keep every finished output (same bytes,
same modification time), redo the interrupted jobs and give the tables of an uninterrupted run.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workflow_runs import ROOT, TINY_CONFIG, UNTIMED_TABLES, limit, untimed_cells

from msdefense.launch import LOCK_FILE

pytestmark = pytest.mark.workflow


def _launch(workdir: Path) -> list[str]:
    """What ``make run`` runs, on the tiny config in ``workdir``."""
    return [sys.executable, "-m", "msdefense.launch", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(workdir / "tiny.yaml"), "--cores", "2"]  # fmt: skip


def _wait_until_unlocked(path: Path, seconds: float = 60) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{path} still locked {seconds} s after the kill"
                time.sleep(0.2)
    finally:
        os.close(fd)


def _incomplete(workdir: Path) -> set[Path]:
    """Outputs of the jobs running now (Snakemake's markers: the URL-safe base64 of each output
    path, cut into folders named ``@<part>`` where it is longer than a file name may be)."""
    root = workdir / ".snakemake" / "incomplete"
    paths = set()
    for marker in (m for m in root.rglob("*") if m.is_file()):
        encoded = "".join(part.removeprefix("@") for part in marker.relative_to(root).parts)
        paths.add((workdir / base64.urlsafe_b64decode(encoded).decode()).resolve())
    return paths


def _outputs(workdir: Path) -> dict[Path, tuple[int, bytes]]:
    results = workdir / "results"
    return {
        p.resolve(): (p.stat().st_mtime_ns, p.read_bytes())
        for p in results.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and "logs" not in p.parts
        and "benchmarks" not in p.parts
    }


def test_a_killed_run_resumes_with_the_same_command(tmp_path: Path, tiny_run: Path) -> None:
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copy(TINY_CONFIG, workdir / "tiny.yaml")
    first = subprocess.Popen(_launch(workdir), start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    victim = workdir / "results" / "tiny" / "seed3" / "victims" / "digits_tiny" / "model.safetensors"
    deadline = time.monotonic() + 600
    while not (
        victim.exists() and any("train_" in str(p) or "attacks" in str(p) for p in _incomplete(workdir))
    ):
        assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no training job started within 10 minutes"
        time.sleep(0.2)
    second = subprocess.run(
        _launch(workdir), capture_output=True, text=True, timeout=60
    )  # waits 10 s, refused
    assert second.returncode == 1 and "another run of this workflow is working" in second.stderr
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    _wait_until_unlocked(workdir / LOCK_FILE)  # every process of the run has exited
    running = _incomplete(workdir)
    # a running job's directory output (a KnockoffNets sweep's clones/) may hold files already:
    # they are redone with their job, not finished
    finished = {
        p: v for p, v in _outputs(workdir).items() if not any(p == r or r in p.parents for r in running)
    }
    assert running and finished and (workdir / ".snakemake" / "locks").is_dir()
    assert any((workdir / ".snakemake" / "locks").glob("*.lock")), "the kill left no stale lock to remove"

    resumed = subprocess.run(_launch(workdir), capture_output=True, text=True, timeout=limit(3600))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "removing the locks of an interrupted run" in resumed.stderr
    after = _outputs(workdir)
    redone = [str(p) for p, v in finished.items() if after.get(p) != v]
    assert not redone, f"finished outputs were redone: {redone}"
    assert all(p in after for p in running if p.suffix in (".safetensors", ".json", ".npz"))
    ours = workdir / "results" / "tiny"
    for name in UNTIMED_TABLES:  # an uninterrupted run's cells, as text (timing columns aside)
        table = Path("tables") / f"{name}.csv"
        assert untimed_cells(ours / table).equals(untimed_cells(tiny_run / table)), name
    # the claims table too, but for the rows that rest on timings (their note says so)
    import pandas as pd

    from msdefense.reporting.verdicts import TIMING_NOTE

    claims = [
        pd.read_csv(r / "tables" / "claims.csv", dtype=str, keep_default_na=False) for r in (ours, tiny_run)
    ]
    untimed = [c[~c["note"].str.contains(TIMING_NOTE, regex=False)].reset_index(drop=True) for c in claims]
    assert len(untimed[0]) < len(claims[0]) and untimed[0].equals(untimed[1])
    weights = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*.safetensors"))
    assert weights == sorted(p.relative_to(ours) for p in ours.rglob("*.safetensors"))
    differ = [str(w) for w in weights if (ours / w).read_bytes() != (tiny_run / w).read_bytes()]
    assert not differ, f"weights differ between two runs of one config: {differ}"
