"""A fingerprint of the package code a workflow script runs, so that a code change reruns its jobs.

Snakemake reruns a job when its ``params`` change (the ``params`` rerun trigger, on by default),
but it cannot see the modules a script imports. Every rule passes the fingerprint of its script
and of the package modules the script imports, directly or through other package modules, as a
``code`` param: editing a function in ``src/msdefense`` changes the fingerprint of exactly the
rules that import its module, and ``snakemake -n`` plans their jobs again. Imports are read from
the source (no module is executed), so the fingerprint is cheap enough to compute at parse time.
A stage a script names as a ``"module:function"`` string (``msdefense.jobserver.run_job``) counts
as imported.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = "msdefense"
PACKAGE_DIR = Path(__file__).resolve().parent
#: a stage named as text, ``msdefense.stages.x:function`` (what the workflow scripts pass to run_job)
STAGE_TARGET = re.compile(rf"^({PACKAGE}(?:\.\w+)+):\w+$")


def module_file(name: str) -> Path | None:
    """The source file of the package module ``name`` (``msdefense.x.y``), or None if it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str | None:
    """The dotted name of a file inside the package (None outside it)."""
    try:
        rel = path.resolve().relative_to(PACKAGE_DIR)
    except ValueError:
        return None
    parts = [PACKAGE, *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imported(path: Path) -> frozenset[str]:
    """The package modules ``path`` imports (absolute or relative, names imported from packages
    that are themselves modules included), with the packages above each of them."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path)
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if here is None:
                    continue
                anchor = here.split(".")
                drop = node.level - 1 if is_package else node.level
                base = ".".join(anchor[: len(anchor) - drop] if drop else anchor)
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            target = STAGE_TARGET.match(node.value)
            if target:
                names.add(target.group(1))
    found: set[str] = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            if module_file(".".join(parts[:i])) is not None:
                found.add(".".join(parts[:i]))
    return frozenset(found)


def closure(script: Path) -> list[Path]:
    """``script`` and every package source file it imports, transitively, sorted."""
    seen: dict[str, Path] = {}
    todo = sorted(_imported(script))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        file = module_file(name)
        if file is None:
            continue
        seen[name] = file
        todo.extend(sorted(_imported(file) - seen.keys()))
    return [script.resolve(), *sorted(set(seen.values()))]


@cache
def code_fingerprint(script: str | Path) -> str:
    """A short hash of the contents of ``script`` and of every package module it imports."""
    digest = hashlib.sha256()
    for file in closure(Path(script)):
        name = _module_name(file) or file.name
        digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
