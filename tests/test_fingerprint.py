"""The code fingerprint: which package files a workflow script runs, and that an edit changes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from msdefense import fingerprint

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


def _names(script: str) -> set[str]:
    return {str(p.relative_to(fingerprint.PACKAGE_DIR)) for p in fingerprint.closure(SCRIPTS / script)[1:]}


def test_closure_follows_relative_and_package_imports() -> None:
    answers = _names("answer_queries.py")
    # answer_queries.py -> stages.answers -> ..defenses (a package) -> .dcp (relative, from __init__)
    assert {"stages/answers.py", "defenses/__init__.py", "defenses/dcp.py", "oracle.py"} <= answers
    assert "stages/__init__.py" in answers and "__init__.py" in answers  # parents run first
    assert not any(n.startswith("reporting/") for n in answers)
    tables = _names("tables.py")
    assert "reporting/tables.py" in tables and "defenses/dcp.py" not in tables


def test_every_script_has_a_fingerprint_that_names_no_path() -> None:
    prints = {s.name: fingerprint.code_fingerprint(s) for s in SCRIPTS.glob("*.py")}
    assert all(len(p) == 16 for p in prints.values())
    assert len(set(prints.values())) == len(prints)  # each script's own bytes are part of it


def test_an_edit_changes_exactly_the_fingerprints_of_the_scripts_that_import_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "msdefense"
    shutil.copytree(fingerprint.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", package)
    scripts = ("answer_queries.py", "tables.py", "claims_table.py")

    def prints() -> dict[str, str]:
        fingerprint.code_fingerprint.cache_clear()
        fingerprint._imported.cache_clear()
        return {s: fingerprint.code_fingerprint(SCRIPTS / s) for s in scripts}

    before = prints()
    dcp = package / "defenses" / "dcp.py"
    dcp.write_text(dcp.read_text() + "\n\ndef _edited() -> int:\n    return 1\n")
    after = prints()
    assert after["answer_queries.py"] != before["answer_queries.py"]
    assert after["tables.py"] == before["tables.py"]
    assert after["claims_table.py"] == before["claims_table.py"]
    claims = package / "reporting" / "claims.py"
    text = claims.read_text()
    assert "def claims_table(" in text  # the edit below must change the file
    claims.write_text(text.replace("def claims_table(", "def claims_table(  ", 1))
    again = prints()
    assert again["claims_table.py"] != after["claims_table.py"]
    assert again["answer_queries.py"] == after["answer_queries.py"]
    fingerprint.code_fingerprint.cache_clear()
    fingerprint._imported.cache_clear()
