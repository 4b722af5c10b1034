"""How a job finds the package, whatever software environment runs it.

``make venv`` installs the package (editable) into the virtual environment; a conda environment
made by ``--software-deployment-method conda`` (envs/msdefense.yaml) holds the dependencies
only, because Snakemake copies the env file to ``.snakemake/conda/`` and any path in it would
resolve there instead of in the repository. The workflow puts the checkout's ``src`` first on
``PYTHONPATH`` when it loads, and jobs inherit it (locally, and on SLURM, where each job loads
the workflow again), so every job runs this checkout's code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def job_pythonpath(workflow_dir: str | Path, environ: Mapping[str, str] = os.environ) -> str:
    """``PYTHONPATH`` with ``<workflow_dir>/src`` first (once), then what was already there."""
    src = str(Path(workflow_dir).resolve() / "src")
    rest = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    return os.pathsep.join([src, *rest])


def export_job_pythonpath(workflow_dir: str | Path) -> str:
    """Set :func:`job_pythonpath` in this process's environment, which every job inherits."""
    os.environ["PYTHONPATH"] = job_pythonpath(workflow_dir)
    return os.environ["PYTHONPATH"]
