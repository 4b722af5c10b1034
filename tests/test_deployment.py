"""Software deployment: the conda env file holds no path, and jobs import this checkout's code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from msdefense.deployment import export_job_pythonpath, job_pythonpath

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / "envs" / "msdefense.yaml"
REQUIREMENT = re.compile(r"^[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+$")


def _pins(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_env_file_copied_where_snakemake_puts_it_still_resolves(tmp_path: Path) -> None:
    # Snakemake deploys a copy, .snakemake/conda/<hash>.yaml: nothing in it may be a path
    copy = tmp_path / ".snakemake" / "conda" / "0123abcd.yaml"
    copy.parent.mkdir(parents=True)
    shutil.copy(ENV_FILE, copy)
    env = yaml.safe_load(copy.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip and all(REQUIREMENT.match(req) for req in pip), pip
    constraints = _pins(ROOT / "envs" / "constraints.txt")
    for req in pip:  # the same versions as the tested virtual environment
        name, version = req.split("==")
        assert constraints[name.lower().replace("_", "-")] == version, req


def test_job_pythonpath_puts_the_checkout_first_once(tmp_path: Path) -> None:
    src = str((tmp_path / "src").resolve())
    assert job_pythonpath(tmp_path, {}) == src
    other = os.pathsep.join(["/x", src, "/y"])
    assert job_pythonpath(tmp_path, {"PYTHONPATH": other}) == os.pathsep.join([src, "/x", "/y"])


def test_a_python_without_the_package_imports_it_from_the_checkout() -> None:
    # -S: no site-packages, so no editable install: only the workflow's PYTHONPATH can find it
    env = {**os.environ, "PYTHONPATH": job_pythonpath(ROOT, {})}
    code = "import msdefense.deployment as d; print(d.__file__)"
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert Path(out.stdout.strip()) == ROOT / "src" / "msdefense" / "deployment.py"


def test_the_workflow_sets_it_for_its_jobs(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert (
        export_job_pythonpath(ROOT)
        == os.environ["PYTHONPATH"]
        == job_pythonpath(ROOT, {"PYTHONPATH": "/elsewhere"})
    )
    assert "export_job_pythonpath(WORKFLOW_DIR)" in (ROOT / "Snakefile").read_text()
