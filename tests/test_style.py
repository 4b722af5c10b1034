"""Conventions of the package's code that a linter does not check (DEVELOPERS.md, Style)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "msdefense"
#: More positional parameters than this make a call site unreadable: the rest are keyword-only.
MAX_POSITIONAL = 6


def test_no_function_takes_more_than_six_positional_parameters() -> None:
    too_many = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [
                    a.arg for a in (*node.args.posonlyargs, *node.args.args) if a.arg not in ("self", "cls")
                ]
                if len(positional) > MAX_POSITIONAL:
                    too_many.append(
                        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}({', '.join(positional)})"
                    )
    assert not too_many, "make the later parameters keyword-only (after *): " + "; ".join(too_many)


def test_every_defense_module_that_registers_a_method_is_imported_by_the_package() -> None:
    """A method registers on import (docs/architecture.md, "How to add a defense"): a module that
    ``defenses/__init__.py`` does not import would never reach the registry."""
    import sys

    import msdefense.defenses  # noqa: F401

    registering = []
    for path in sorted((PACKAGE / "defenses").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        calls = [
            n.value
            for n in tree.body
            if isinstance(n, ast.Expr)
            and isinstance(n.value, ast.Call)
            and getattr(n.value.func, "id", "") == "register"
        ]
        if calls:
            registering.append(path.stem)
    assert len(registering) >= 7  # the seven methods of the papers
    missing = [m for m in registering if f"msdefense.defenses.{m}" not in sys.modules]
    assert not missing, f"import these in src/msdefense/defenses/__init__.py: {missing}"
