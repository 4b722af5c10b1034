"""End to end: Snakemake runs the tiny config, writes the table and figure, then has nothing to do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from msdefense.reporting import KNOCKOFF_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "tiny.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copy(ROOT / "tests" / "data" / "tiny.yaml", workdir / "tiny.yaml")
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results" / "tiny"


def test_table_has_one_row_per_run(finished_run: Path) -> None:
    table = pd.read_csv(finished_run / "tables" / "knockoff.csv")
    assert list(table.columns) == KNOCKOFF_COLUMNS
    assert len(table) == 2 * (1 + 3)  # two transfer sets × (None + three DCP values)
    assert set(table["defense"]) == {"undefended", "DCP"}
    for col in ("defender_acc", "clone_acc", "fidelity"):
        assert table[col].between(0, 1).all()
    photos = table[table["transfer"] == "photos"]
    assert (photos["queries"] == 400).all()
    none = table[table["defense"] == "undefended"]
    assert (none["l1_distance"] == 0).all()
    dcp = table[(table["defense"] == "DCP")].set_index(["transfer", "param"])
    assert dcp.loc[("photos", 0.0), "l1_distance"] == 0  # β = 0 leaves answers unchanged
    assert dcp.loc[("photos", 1.5), "l1_distance"] > 0  # β = 1.5 perturbs every answer
    assert (finished_run / "tables" / "knockoff.md").read_text().startswith("| victim | transfer |")


def test_figure_and_provenance(finished_run: Path) -> None:
    for name in ("knockoff_tradeoff.png", "knockoff_tradeoff.pdf"):
        assert (finished_run / "figures" / name).stat().st_size > 1000
    assert (finished_run / "victims" / "digits_tiny" / "history.csv").exists()
    assert (finished_run / "logs" / "train_victim" / "digits_tiny.log").exists()
    assert (finished_run / "benchmarks" / "train_victim" / "digits_tiny.tsv").exists()


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    proc = snakemake(finished_run.parent.parent, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr
