"""A fingerprint of the package code a job runs, so that a code change reruns exactly its jobs.

Snakemake reruns a job when its ``params`` change (the ``params`` rerun trigger, on by default),
but it cannot see the modules a script imports. Every rule passes the fingerprint of its script
and of the package modules the script reaches as a ``code`` param:

- **What a module does, not its text.** A module counts by its syntax tree without docstrings
  (comments are not in the tree, line numbers are left out): a comment, a docstring or a blank
  line changes no fingerprint; a changed statement, name or constant does.
- **The modules a job really reaches.** Imports are read from the source (nothing is executed),
  at any depth of the module (lazy imports in functions count; ``if TYPE_CHECKING:`` blocks do
  not). ``from pkg import name`` reaches the submodule ``pkg/__init__.py`` re-exports ``name``
  from; the packages above a module count with what they import (importing ``a.b.c`` runs
  ``a/__init__.py``), so a package's ``__init__.py`` imports only what every user of the package
  needs. A text that names a package
  module, ``"msdefense.x.y"`` or ``"msdefense.x.y:function"`` (a stage a script runs, a model a
  registry imports on first use), counts as an import.
- **The defense a job applies.** Defense methods are imported on first use from
  :data:`msdefense.defenses.registry.METHOD_MODULES`; a job passes the methods it applies
  (``defenses=``), and only their modules enter its fingerprint through the registry, so an edit
  in ``defenses/dcp.py`` reruns DCP's jobs and what depends on them, not ReverseSigmoid's.

Every job of the tests' tiny run logs the package modules it really imported
(:data:`msdefense.jobclient.MODULES_LOG`); a test checks that each lies in the job's closure.

:func:`import_graph` is the same graph for the whole package; a test keeps it free of circles.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = "msdefense"
PACKAGE_DIR = Path(__file__).resolve().parent
#: a package module named in text: ``msdefense.x.y`` or ``msdefense.x.y:function``
#: the module that imports a defense method's module on lookup (by name, from METHOD_MODULES)
DEFENSE_REGISTRY = f"{PACKAGE}.defenses.registry"
NAMED_MODULE = re.compile(rf"^({PACKAGE}(?:\.\w+)+)(?::\w+)?$")


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


def module_name(path: Path) -> str | None:
    """The dotted name of a file inside the package (None outside it)."""
    try:
        rel = path.resolve().relative_to(PACKAGE_DIR)
    except ValueError:
        return None
    parts = [PACKAGE, *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _base(node: ast.ImportFrom, path: Path) -> str | None:
    """The absolute module an ``from ... import`` statement in ``path`` imports from."""
    if not node.level:
        return node.module
    here = module_name(path)
    if here is None:
        return None
    anchor = here.split(".")
    drop = node.level - 1 if path.name == "__init__.py" else node.level
    base = ".".join(anchor[: len(anchor) - drop] if drop else anchor)
    return f"{base}.{node.module}" if node.module else base


@cache
def _reexports(package: str) -> dict[str, str]:
    """Names ``package/__init__.py`` imports from its own modules: name -> defining module."""
    file = module_file(package)
    if file is None or file.name != "__init__.py":
        return {}
    found: dict[str, str] = {}
    for node in _tree(file).body:
        if isinstance(node, ast.ImportFrom):
            base = _base(node, file)
            if base and module_file(base) is not None:
                for alias in node.names:
                    found[alias.asname or alias.name] = _resolve(base, alias.name)
    return found


def _resolve(base: str, name: str) -> str:
    """The package module ``from base import name`` reaches."""
    if module_file(f"{base}.{name}") is not None:
        return f"{base}.{name}"
    return _reexports(base).get(name, base)


def _walk_run_time(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


@cache
def imports(path: Path, *, named: bool = True) -> frozenset[str]:
    """The package modules the file ``path`` reaches directly: its import statements at any depth
    (a name a package re-exports resolved to the module defining it) and, with ``named``, the
    package modules it names in text (imported on demand: a registry's modules, a script's stage)."""
    names: set[str] = set()
    for node in _walk_run_time(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, path)
            if base:
                names.update(_resolve(base, alias.name) for alias in node.names)
        elif named and isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = NAMED_MODULE.match(node.value)
            if match:
                names.add(match.group(1))
    here = module_name(path)
    return frozenset(n for n in names if n != here and module_file(n) is not None)


def parents(name: str) -> list[str]:
    """The packages above module ``name`` (``a`` and ``a.b`` for ``a.b.c``)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(*, named: bool = False) -> dict[str, frozenset[str]]:
    """Every package module and the package modules it imports (:func:`imports`; with ``named``,
    also those it names in text, which a registry imports on demand)."""
    graph = {}
    for file in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(file)
        if name is not None:
            graph[name] = imports(file, named=named)
    return graph


def _method_modules() -> dict[str, str]:
    from .defenses.registry import METHOD_MODULES

    return dict(METHOD_MODULES)


def closure(script: Path, *, defenses: Iterable[str] | None = None) -> list[Path]:
    """``script`` and every package file a job running it reaches, sorted after it: what it
    imports, the packages above each (importing ``a.b.c`` runs ``a/__init__.py`` and
    ``a/b/__init__.py``, and what they import), transitively.

    ``defenses``: the defense methods the job applies, whose modules the registry imports on
    lookup (:data:`msdefense.defenses.registry.METHOD_MODULES`); None: all of them. A method
    module imported by a statement is reached whatever ``defenses`` says.
    """
    from .registry import is_import_path

    methods = _method_modules()
    outside = sorted(d for d in defenses or () if is_import_path(d))
    unknown = sorted(set(defenses or ()) - methods.keys() - set(outside))
    if unknown:
        raise KeyError(f"no defense method {unknown}; known: {', '.join(sorted(methods))}")
    chosen = methods.keys() if defenses is None else set(defenses) - set(outside)
    looked_up = {module for method, module in methods.items() if method not in chosen}
    seen: set[str] = set()
    todo = sorted(imports(script))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        reached = set(imports(module_file(name))) | {p for p in parents(name) if module_file(p)}  # type: ignore[arg-type]
        if name == DEFENSE_REGISTRY:
            reached = (reached - looked_up) | {methods[m] for m in chosen}
        todo.extend(sorted(reached - seen))
    # a method defined outside the package (an import path): its module's own file, so that an
    # edit to it reruns its jobs (what that module imports in turn is not followed)
    files = {module_file(n) for n in seen} | {_outside_file(path) for path in outside}
    return [script.resolve(), *sorted(files)]  # type: ignore[type-var]


def _outside_file(path: str) -> Path:
    """The source file of the module of import path ``path`` (``package.module:name``)."""
    import importlib.util

    spec = importlib.util.find_spec(path.partition(":")[0])
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise KeyError(f"defense method {path!r}: no Python source file for its module")
    return Path(spec.origin).resolve()


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def code_of(path: Path) -> str:
    """What the file ``path`` does: its syntax tree without docstrings, line numbers or comments."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return ast.dump(_without_docstrings(tree), include_attributes=False)


@cache
def _fingerprint(script: Path, defenses: tuple[str, ...] | None) -> str:
    digest = hashlib.sha256()
    for file in closure(script, defenses=defenses):
        name = module_name(file) or file.name
        digest.update(name.encode() + b"\0" + code_of(file).encode() + b"\0")
    return digest.hexdigest()[:16]


def code_fingerprint(script: str | Path, *, defenses: Iterable[str] | None = None) -> str:
    """A short hash of what ``script`` and the package code it reaches do (:func:`closure`)."""
    chosen = None if defenses is None else tuple(sorted(set(defenses)))
    return _fingerprint(Path(script).resolve(), chosen)


def clear_caches() -> None:
    """Forget every file read (after the sources changed in this process)."""
    for cached in (_tree, _reexports, imports, code_of, _fingerprint):
        cached.cache_clear()
