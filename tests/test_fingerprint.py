"""The code fingerprint: which package files a job reaches, that an edit of what the code does
changes exactly the fingerprints of the jobs that run it, and that a comment or docstring changes
none; the package has no import circle."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from msdefense import fingerprint
from msdefense.defenses.registry import METHOD_MODULES

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
#: modules the checks below edit: inside the old import circle, plumbing, a defense, a model
EDITED = (
    "misleader/member.py",
    "data/transfer.py",
    "quantization/fx.py",
    "defenses/dcp.py",
    "models/lenet.py",
    "stages/context.py",
    "victims.py",
    "reporting/claims.py",
)


def _names(script: str, defenses=None) -> set[str]:
    files = fingerprint.closure(SCRIPTS / script, defenses=defenses)[1:]
    return {str(p.relative_to(fingerprint.PACKAGE_DIR)) for p in files}


def _circles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circle() -> None:
    graph = fingerprint.import_graph()
    assert len(graph) > 90
    assert _circles(graph) == []
    # the check sees a circle where there is one
    assert _circles({**graph, "msdefense.io": graph["msdefense.io"] | {"msdefense.victims"}})


def test_a_job_reaches_only_the_defense_it_applies_and_tables_reach_no_model_code() -> None:
    dcp = _names("answer_queries.py", defenses=["DCP"])
    assert {"stages/answers.py", "defenses/dcp.py", "defenses/sigmoid_family.py", "oracle.py"} <= dcp
    assert not {"defenses/reverse_sigmoid.py", "defenses/mad.py", "defenses/none.py"} & dcp
    assert "models/lenet.py" in dcp  # a registry's modules, named in text, count as imported
    assert "defenses/reverse_sigmoid.py" in _names("answer_queries.py")  # None: every method
    tables = _names("tables.py", defenses=[])
    assert "reporting/tables.py" in tables
    assert not [
        n for n in tables if n.startswith(("models/", "data/", "defenses/", "quantization/", "misleader/"))
    ]
    assert "stages/__init__.py" in tables and "__init__.py" in tables  # the packages above count


def test_every_script_has_a_fingerprint_that_names_no_path() -> None:
    prints = {s.name: fingerprint.code_fingerprint(s) for s in SCRIPTS.glob("*.py")}
    assert all(len(p) == 16 for p in prints.values())
    assert len(set(prints.values())) == len(prints)  # each script's own code is part of it


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the package that the fingerprint reads instead of the real one."""
    copy = tmp_path / "msdefense"
    shutil.copytree(fingerprint.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", copy)
    fingerprint.clear_caches()
    yield copy
    fingerprint.clear_caches()


def _prints() -> dict[tuple[str, str], str]:
    """Every script's fingerprint for a job of every defense method (and for every method)."""
    fingerprint.clear_caches()
    out = {}
    for script in sorted(SCRIPTS.glob("*.py")):
        for method in [*METHOD_MODULES, "all"]:
            chosen = None if method == "all" else [method]
            out[script.name, method] = fingerprint.code_fingerprint(script, defenses=chosen)
    return out


def test_comments_docstrings_and_blank_lines_change_no_fingerprint(package: Path) -> None:
    """In every module of the package at once: a comment appended, the module docstring edited."""
    before = _prints()
    files = sorted(package.rglob("*.py"))
    assert len(files) > 90
    for file in files:
        text = file.read_text()
        head, quotes, rest = text.partition('"""')  # the module docstring's opening quotes
        edited = f'{head}"""An edited docstring.\n\n{rest}' if quotes else text
        file.write_text(f"{edited}\n\n# an appended comment\n\n")
    assert _prints() == before


def test_a_real_change_to_dcp_changes_the_fingerprints_of_dcps_jobs_only(package: Path) -> None:
    before = _prints()
    dcp = package / "defenses" / "dcp.py"
    dcp.write_text(
        dcp.read_text().replace("confidence = probs.max(-1).values", "confidence = probs.amax(-1)")
    )
    after = _prints()
    changed = {key for key in before if before[key] != after[key]}
    assert changed and all(method in ("DCP", "all") for _, method in changed)
    assert ("answer_queries.py", "DCP") in changed and ("measure_latency.py", "all") in changed
    assert ("answer_queries.py", "ReverseSigmoid") not in changed


@pytest.mark.parametrize("name", EDITED)
def test_a_real_change_to_a_module_changes_the_fingerprint_of_the_scripts_that_reach_it(
    package: Path, name: str
) -> None:
    before = _prints()
    file = package / name
    file.write_text(file.read_text() + "\n\n_EDITED = 1\n")
    after = _prints()
    changed = {script for (script, method), value in before.items() if after[script, method] != value}
    reaching = {s.name for s in SCRIPTS.glob("*.py") if file in fingerprint.closure(s)}
    assert reaching and changed == reaching


# ----------------------------------------------------------------------------------------------
# on a finished tiny run


def _script_of_target() -> dict[str, str]:
    found = {}
    for script in SCRIPTS.glob("*.py"):
        for line in script.read_text().splitlines():
            if line.startswith("run_job("):
                found[line.split('"')[1]] = script.name
    return found


def _tiny_config(tiny_run: Path) -> dict:
    import yaml

    return yaml.safe_load((tiny_run.parent.parent / "tiny.yaml").read_text())


def test_every_job_of_the_tiny_run_imported_only_modules_its_fingerprint_covers(tiny_run: Path) -> None:
    """The fingerprint is computed without running anything; each job of the tiny run logged the
    package modules it really imported (msdefense.jobclient.MODULES_LOG): none is missing."""
    import json

    defenses = _tiny_config(tiny_run)["defenses"]
    scripts = _script_of_target()
    records = [
        json.loads(line) for line in (tiny_run.parent.parent / "modules.jsonl").read_text().splitlines()
    ]
    assert len({r["target"] for r in records}) >= 15
    for record in records:
        wildcards = record["wildcards"]
        if "defense" in wildcards:
            methods = [defenses[wildcards["defense"]]["method"]]
        elif record["target"].endswith(":measure_latency"):
            methods = [d["method"] for d in defenses.values()]
        else:
            methods = []
        files = fingerprint.closure(SCRIPTS / scripts[record["target"]], defenses=methods)
        covered = {fingerprint.module_name(f) for f in files[1:]}
        missing = sorted(set(record["modules"]) - covered)
        assert not missing, f"{record['target']} {wildcards}: imported {missing} outside its fingerprint"


def _planned(tiny_run: Path, src: Path) -> list[dict[str, str]]:
    """The jobs ``snakemake -n`` plans on the finished tiny run with the package copy ``src``."""
    import os
    import re

    from workflow_runs import run_tiny

    env = {"PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    proc = run_tiny(tiny_run.parent.parent, "-n", timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            reason = re.search(r"reason: (.*)", block)
            wildcards = re.search(r"wildcards: (.*)", block)
            jobs.append(
                {
                    "rule": rule.group(1),
                    "reason": reason.group(1) if reason else "",
                    "wildcards": wildcards.group(1) if wildcards else "",
                }
            )
    return jobs


def test_on_a_finished_run_comments_replan_nothing_and_a_dcp_change_replans_dcps_jobs(
    tiny_run: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    copy = src / "msdefense"
    shutil.copytree(fingerprint.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert [j for j in _planned(tiny_run, src) if j["rule"] != "all"] == []
    for name in EDITED:
        file = copy / name
        file.write_text(file.read_text() + "\n\n# an appended comment\n")
    assert [j for j in _planned(tiny_run, src) if j["rule"] != "all"] == []
    dcp = copy / "defenses" / "dcp.py"
    dcp.write_text(
        dcp.read_text().replace("confidence = probs.max(-1).values", "confidence = probs.amax(-1)")
    )
    jobs = [j for j in _planned(tiny_run, src) if j["rule"] != "all"]
    dcp_entries = [k for k, d in _tiny_config(tiny_run)["defenses"].items() if d["method"] == "DCP"]
    rerun = [j for j in jobs if "Params have changed" in j["reason"]]
    assert rerun and all(
        j["rule"] == "measure_latency" or any(f"defense={k}" in j["wildcards"] for k in dcp_entries)
        for j in rerun
    ), rerun
    assert "answer_queries" in {j["rule"] for j in rerun}
    others = [j for j in jobs if j not in rerun]
    # the clones read DCP's answers (not its code): planned again because their input is
    assert any(j["rule"] == "train_knockoff" and "defense=DCP" in j["wildcards"] for j in others)
    assert all(j["reason"].startswith("Input files updated by another job") for j in others), others
    assert not any("defense=undefended" in j["wildcards"] for j in jobs)
