"""The workflow as a Snakemake module: docs/architecture.md's snippet, deployed into a workflow of
its own folder with the tiny config, dry-runs and plans the jobs the tiny experiment plans run
directly (paths to the checkout's files from the module's Snakefile, outputs in the working
directory)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from test_paper_configs import _planned, _snakemake, resolved
from workflow_runs import ROOT, SNAKEMAKE, TINY_CONFIG, limit

from msdefense.plan import job_counts

DOC = ROOT / "docs" / "architecture.md"
SECTION = "## Using the workflow as a Snakemake module"
#: where the snippet names this checkout
PLACEHOLDER = "/path/to/msdefense"


def module_snippet() -> str:
    """The Snakefile the doc's section shows."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC.name} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the section shows one Snakefile"
    return blocks[0]


def deploy(folder: Path) -> Path:
    """A workflow in ``folder`` that uses this one as a module, with the tiny config as its own."""
    snippet = module_snippet()
    assert PLACEHOLDER in snippet
    snakefile = folder / "workflow" / "Snakefile"
    snakefile.parent.mkdir(parents=True)
    snakefile.write_text(snippet.replace(PLACEHOLDER, str(ROOT)), encoding="utf-8")
    (folder / "config").mkdir()
    shutil.copy(TINY_CONFIG, folder / "config" / "config.yaml")
    return snakefile


def test_the_workflow_dry_runs_as_a_module_from_another_folder(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    snakefile = deploy(outer)
    cmd = [SNAKEMAKE, "--snakefile", str(snakefile), "--directory", str(outer)]
    cmd += ["--cores", "1", "--dry-run", "--quiet", "rules"]
    # started elsewhere, so that nothing resolves against this checkout by chance
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit(600), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    direct = _snakemake(TINY_CONFIG, tmp_path / "direct", "--dry-run", "--quiet", "rules")
    assert direct.returncode == 0, direct.stderr[-3000:]
    planned = _planned(proc)
    assert planned == _planned(direct) == job_counts(resolved(TINY_CONFIG))
