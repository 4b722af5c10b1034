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


def test_every_defense_module_that_registers_a_method_is_in_the_registry_table() -> None:
    """A built-in method's module is imported when its name is first looked up
    (docs/architecture.md, "How to add a defense"): a registering module missing from
    ``METHOD_MODULES`` would never reach the registry, and each listed module registers its name."""
    from msdefense.defenses.registry import DEFENSES, METHOD_MODULES

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
            registering.append(f"msdefense.defenses.{path.stem}")
    assert len(registering) >= 7  # the seven methods of the papers
    assert sorted(registering) == sorted(METHOD_MODULES.values())
    assert all(DEFENSES[name].name == name for name in METHOD_MODULES)
