"""The recipes of docs/architecture.md are what the code needs: every file the attack recipe names
is checked here for each attack family the workflow has (KnockoffNets, data-free), and the recipe
names exactly the files these checks cover; the defense recipe's table is the registry's."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from msdefense import layout, plan, record_types
from msdefense.defenses.registry import METHOD_MODULES
from msdefense.preflight import load_checked
from msdefense.records import RECORDS
from msdefense.resources import RULES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "msdefense"

#: each attack family: its module(s), rule, record kind and class, metrics pattern, config section,
#: its runs in msdefense.config, its input and metrics functions in rules/common.smk, its table
FAMILIES = {
    "knockoff": {
        "modules": ["attacks/knockoff.py"],
        "rule": "train_knockoff",
        "record": record_types.KnockoffRecord,
        "pattern": layout.KNOCKOFF_METRICS,
        "section": "knockoff",
        "runs": "knockoff_runs",
        "smk_functions": ["knockoff_metrics", "knockoff_weights"],
        "table": "knockoff_seeds",
        "table_rule": "tables",
        "methods_heading": "KnockoffNets",
    },
    "datafree": {
        "modules": ["attacks/datafree.py", "attacks/datafree_config.py"],
        "rule": "run_datafree",
        "record": record_types.DataFreeRecord,
        "pattern": layout.DATAFREE_METRICS,
        "section": "datafree",
        "runs": "datafree_runs",
        "smk_functions": ["datafree_metrics", "datafree_posteriors"],
        "table": "datafree_seeds",
        "table_rule": "datafree_table",
        "methods_heading": "DFME",
    },
}


def _read(path: str) -> str:
    return (ROOT / path).read_text()


def _functions(path: str) -> set[str]:
    return {n.name for n in ast.walk(ast.parse(_read(path))) if isinstance(n, ast.FunctionDef)}


def _rule_block(path: str, rule: str) -> str:
    text = _read(path)
    start = text.index(f"rule {rule}:")
    end = text.find("\nrule ", start + 1)
    return text[start : end if end > 0 else len(text)]


def check_attack_module(f: dict) -> None:
    for module in f["modules"]:
        tree = ast.parse((SRC / module).read_text())
        assert any(isinstance(n, ast.ClassDef) for n in tree.body), module  # its config dataclass


def check_record(f: dict) -> None:
    assert issubclass(f["record"], record_types.AttackRecord)
    assert all("check" in fld.metadata for fld in dataclasses.fields(f["record"]))


def check_records(f: dict) -> None:
    kind = RECORDS[f["section"]]
    assert kind.pattern == f["pattern"] and kind.fields == record_types.field_checks(f["record"])


def check_stage(f: dict) -> None:
    stages = _read("src/msdefense/stages/attacks.py")
    assert f"def {f['rule']}(" in stages and f["record"].__name__ + "(" in stages


def check_layout(f: dict) -> None:
    assert layout.WRITERS[f["pattern"]] == (f["rule"],)


def check_resources(f: dict) -> None:
    assert f["rule"] in RULES


def check_rule(f: dict) -> None:
    block = _rule_block("rules/attacks.smk", f["rule"])
    assert f'code_version("{f["rule"]}.py"' in block and f"../workflow/scripts/{f['rule']}.py" in block


def check_script(f: dict) -> None:
    assert f'run_job("msdefense.stages.attacks:{f["rule"]}"' in _read(f"workflow/scripts/{f['rule']}.py")


def check_common(f: dict) -> None:
    text = _read("rules/common.smk")
    assert all(f"def {name}(" in text for name in f["smk_functions"])


def check_config(f: dict) -> None:
    from msdefense import config

    assert callable(getattr(config, f["runs"]))


def check_schema(f: dict) -> None:
    assert f["section"] in yaml.safe_load(_read("config/schema.yaml"))["properties"]


def check_plan(f: dict) -> None:
    default = load_checked(ROOT / "config" / "config.yaml", ROOT / "config" / "schema.yaml")
    assert plan.job_counts(default)[f["rule"]] > 0


def check_profile(f: dict) -> None:
    profile = yaml.safe_load(_read("profiles/slurm/config.yaml"))
    assert f["rule"] in profile["set-resources"]


def check_table(f: dict) -> None:
    assert f["table"] in _functions("src/msdefense/reporting/tables.py")


def check_table_rule(f: dict) -> None:
    assert f"{f['section']}_metrics()" in _rule_block("rules/tables.smk", f["table_rule"])


def check_stage_test(f: dict) -> None:
    assert f"def test_{f['rule']}" in _read("tests/test_stages.py")


def check_methods(f: dict) -> None:
    assert re.search(rf"^#+ .*{f['methods_heading']}", _read("docs/methods.md"), re.M)


#: what adding an attack family takes: a file and the check that the existing families meet it
ATTACK_RECIPE = {
    "src/msdefense/attacks/<name>.py": check_attack_module,
    "src/msdefense/record_types.py": check_record,
    "src/msdefense/records.py": check_records,
    "src/msdefense/stages/attacks.py": check_stage,
    "src/msdefense/layout.py": check_layout,
    "src/msdefense/resources.py": check_resources,
    "src/msdefense/config.py": check_config,
    "src/msdefense/plan.py": check_plan,
    "config/schema.yaml": check_schema,
    "rules/common.smk": check_common,
    "rules/attacks.smk": check_rule,
    "workflow/scripts/<rule>.py": check_script,
    "profiles/slurm/config.yaml": check_profile,
    "src/msdefense/reporting/tables.py": check_table,
    "rules/tables.smk": check_table_rule,
    "tests/test_stages.py": check_stage_test,
    "docs/methods.md": check_methods,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("part", sorted(ATTACK_RECIPE))
def test_every_attack_family_has_every_part_of_the_recipe(family: str, part: str) -> None:
    ATTACK_RECIPE[part](FAMILIES[family])


def _recipe(heading: str) -> str:
    text = _read("docs/architecture.md")
    start = text.index(f"**{heading}**")
    end = text.find("\n**", start + 1)
    return text[start:end]


def test_the_attack_recipe_names_exactly_the_files_the_checks_cover() -> None:
    recipe = _recipe("An attack.")
    named = re.findall(r"^\d+\. `([^`]+)`", recipe, re.M)  # each numbered item's file
    assert sorted(named) == sorted(ATTACK_RECIPE) and len(named) == len(set(named))
    count = re.search(r"(\d+) files", recipe)
    assert count and int(count.group(1)) == len(ATTACK_RECIPE)


def test_the_defense_recipe_names_the_registry_table() -> None:
    recipe = _recipe("A defense.")
    assert "METHOD_MODULES" in recipe and "defenses/__init__.py" not in recipe
    assert all(module.startswith("msdefense.defenses.") for module in METHOD_MODULES.values())
