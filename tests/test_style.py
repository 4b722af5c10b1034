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
