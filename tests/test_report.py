"""The HTML report of the tiny run, rendered by headless Chromium: every table and figure is there.

The screenshot is kept in ``test-artifacts/report.png`` (or ``$MSDEFENSE_TEST_ARTIFACTS``).
Skipped, with the reason, where Chromium is not installed (.ci/run installs Debian's ``chromium``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from workflow_runs import ROOT, run_tiny

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: apt-get install -y chromium"),
]
ARTIFACTS = Path(os.environ.get("MSDEFENSE_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def _chromium(*args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    flags += ["--virtual-time-budget=15000", "--window-size=1400,2400"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def report(tiny_run: Path) -> Path:
    path = tiny_run.parent.parent / "report.html"
    proc = run_tiny(tiny_run.parent.parent, "--report", str(path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


def test_report_shows_every_table_and_figure(report: Path, tiny_run: Path) -> None:
    dom = _chromium("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    shown = [*sorted((tiny_run / "tables").glob("*.csv")), *sorted((tiny_run / "figures").glob("*.png"))]
    expected = [p.name for p in shown if not p.name.endswith("_seeds.csv")]
    assert expected, "the tiny run made no tables"
    missing = [name for name in expected if name not in page]
    assert not missing, f"not in the rendered report: {missing}"
    assert "Configuration" in page or "tiny.yaml" in page  # the config the run used
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = _chromium(f"--screenshot={ARTIFACTS / 'report.png'}", report.as_uri())
    assert shot.returncode == 0 and (ARTIFACTS / "report.png").stat().st_size > 10_000, shot.stderr[-2000:]
