"""Runs of the workflow that several test modules share (the tiny experiment, run once)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY_CONFIG = ROOT / "tests" / "data" / "tiny.yaml"
#: Per-run tables of the tiny run (latency is measured, and the claims quote it): two runs of the
#: same config must give them equal, their timing columns aside (:func:`untimed_cells`)
UNTIMED_TABLES = (
    "knockoff_seeds",
    "interpolation_seeds",
    "datafree_seeds",
    "misleader_seeds",
    "quantization_seeds",
)


#: Wall-clock limits of the tests' workflow runs guard against a hang, not a slow machine: each is
#: many times what it takes on an idle 2-core machine (the tiny run: about 2.5 minutes), so a busy
#: machine passes; MSDEFENSE_TEST_TIMEOUT_SCALE multiplies them all (e.g. 4 on a shared runner).
TIMEOUT_SCALE = float(os.environ.get("MSDEFENSE_TEST_TIMEOUT_SCALE", "1"))


def limit(seconds: float) -> float:
    """A test's wall-clock limit of ``seconds``, scaled by :data:`TIMEOUT_SCALE`."""
    return seconds * TIMEOUT_SCALE


def run_tiny(
    workdir: Path, *args: str, timeout: float = 3600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Snakemake on this repository's workflow in ``workdir`` with its copy of the tiny config."""
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "tiny.yaml"), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=limit(timeout), env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny experiment run locally once per session (results/tiny of its work folder); every
    job logs the package modules it imported to ``modules.jsonl`` there (tests/test_fingerprint.py)."""
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copy(TINY_CONFIG, workdir / "tiny.yaml")
    proc = run_tiny(workdir, "--cores", "2", env={"MSDEFENSE_MODULES_LOG": str(workdir / "modules.jsonl")})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results" / "tiny"


def untimed_cells(table: Path):
    """A table's cells as the text in the file, its timing columns (reporting.TIMING_COLUMNS) left out."""
    import pandas as pd

    from msdefense.reporting.tables import TIMING_COLUMNS

    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame.columns])
