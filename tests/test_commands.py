"""Every shell command README.md and docs/ give, run as written: Snakemake commands as dry runs
(the real runs take hours), make targets with ``make -n``, Python scripts with ``--help``, shell
scripts with ``bash -n``. A command the test does not know how to run fails it, so a new kind of
command in the docs comes with a way to check it."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from workflow_runs import ROOT, limit

DOCS = [ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: placeholders of the docs, and the file the test runs in their place
PLACEHOLDERS = {
    "my_experiment.yaml": "tests/data/tiny.yaml",
    "config/paper/<table>.yaml": "config/paper/khaled_knockoff.yaml",
}
STARTS = (".venv/bin/snakemake ", "make ", ".venv/bin/python ", "benchmarks/")


def _strip_comment(line: str) -> str:
    return re.split(r"\s+#\s", line, maxsplit=1)[0].strip()


def commands() -> list[tuple[str, str]]:
    """(document, command) for every command line of a fenced shell block and every inline code
    span that starts like a command."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                line = _strip_comment(line)
                if line and not line.startswith("#"):
                    found.append((doc.relative_to(ROOT).as_posix(), line))
        for span in re.findall(r"`([^`\n]+)`", text):
            if span.startswith(STARTS[:3]) and " " in span:
                found.append((doc.relative_to(ROOT).as_posix(), span.strip()))
    return list(dict.fromkeys(found))


def _argv(command: str) -> list[str]:
    for placeholder, real in PLACEHOLDERS.items():
        command = command.replace(placeholder, real)
    return shlex.split(command)


def _checked(argv: list[str]) -> list[str]:
    """How the test runs a command (see the module docstring)."""
    if argv[0].endswith("snakemake"):
        return [str(ROOT / ".venv" / "bin" / "snakemake"), *argv[1:], "--dry-run", "--quiet", "rules"]
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]]
    if argv[0].endswith("python") and len(argv) > 1:
        script = argv[2:3] if argv[1] == "-m" else argv[1:2]
        head = [str(ROOT / ".venv" / "bin" / "python"), *(["-m"] if argv[1] == "-m" else []), *script]
        return [*head, "--help"]
    if argv[0].endswith(".sh"):
        return ["bash", "-n", argv[0]]
    raise AssertionError(
        f"no way to check the command {shlex.join(argv)!r}: add one to tests/test_commands.py"
    )


def checks() -> list[tuple[str, str]]:
    """:func:`commands`, one per distinct check (a script the docs call with several arguments
    is checked once)."""
    seen: dict[tuple[str, ...], tuple[str, str]] = {}
    for doc, command in commands():
        try:
            key = tuple(_checked(_argv(command)))
        except AssertionError:
            key = (command,)  # fails in the test, with its message
        seen.setdefault(key, (doc, command))
    return list(seen.values())


@pytest.mark.parametrize(("doc", "command"), checks(), ids=lambda v: v[:60])
def test_a_documented_command_runs(doc: str, command: str) -> None:
    argv = _checked(_argv(command))
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=limit(600))
    assert proc.returncode == 0, f"{doc}: {command}\n{(proc.stdout + proc.stderr)[-3000:]}"


def test_the_documents_give_commands() -> None:
    found = [c for _, c in commands()]
    assert "make run" in found and "make test" in found and len(found) > 10
