"""Hostile configs: names that escape their folder, non-finite numbers, budgets that train nothing,
duplicate keys, templates. Each is refused before any job, naming the key (or the file and line).

More refusals (unknown names, cross-references, schema ranges) are in tests/test_config.py.
"""

from __future__ import annotations

import copy
import math
import subprocess
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate
from workflow_runs import ROOT, SNAKEMAKE, limit

from msdefense.config import ConfigError
from msdefense.preflight import NAME_PATTERN, load_checked, load_config_file, preflight

SCHEMA = ROOT / "config" / "schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
NAN, INF = math.nan, math.inf
LONG = "a" * 300


def checked(config: dict) -> None:
    preflight(config, validate=lambda c: validate(c, str(SCHEMA)), schema=SCHEMA)


def _rename(section: str, old: str, new: str):
    def edit(cfg: dict) -> None:
        node = cfg
        for part in section.split("."):
            node = node[part]
        node[new] = node.pop(old)

    return edit


def _set(path: str, value):
    def edit(cfg: dict) -> None:
        *parents, last = path.split(".")
        node = cfg
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return edit


HOSTILE = {
    # names: every one becomes part of a path
    "experiment-dotdot": (_set("experiment", ".."), ["experiment", "'..'"]),
    "experiment-dot": (_set("experiment", "."), ["experiment", "'.'"]),
    "experiment-hidden": (_set("experiment", ".hidden"), ["experiment"]),
    "experiment-slash": (_set("experiment", "a/b"), ["experiment", "'a/b'"]),
    "experiment-empty": (_set("experiment", ""), ["experiment"]),
    "experiment-300-chars": (_set("experiment", LONG), ["experiment", "300 characters"]),
    "experiment-periodic": (_set("experiment", "a" * 64), ["experiment", "'a' repeated 64 times"]),
    "defense-periodic": (_rename("defenses", "DCP", "DCP" + "ab" * 25), ["defenses.DCPabab", "repeated 25"]),
    "experiment-number": (_set("experiment", 5), ["experiment", "5"]),
    "victim-dotdot": (_rename("victims", "digits_misleader", ".."), ["victims...", "'..'"]),
    "victim-300-chars": (_rename("victims", "digits_misleader", LONG), ["victims.aaa", "300 characters"]),
    "victim-dash-first": (_rename("victims", "digits_misleader", "-x"), ["victims.-x"]),
    "victim-space": (_rename("victims", "digits_misleader", "a b"), ["victims.a b"]),
    "transfer-dotdot": (_rename("transfer_sets", "photos", ".."), ["transfer_sets...", "'..'"]),
    # a folder named like another rule's file: Snakemake's ChildIOException, before this check
    "transfer-file-name": (
        _rename("transfer_sets", "photos", "misinformation.safetensors"),
        ["transfer_sets.misinformation.safetensors", "ends like one of the workflow's file names"],
    ),
    "defense-dotdot": (_rename("defenses", "Random", ".."), ["defenses...", "'..'"]),
    "attack-dotdot": (_rename("datafree.attacks", "maze", ".."), ["datafree.attacks...", "'..'"]),
    "reference-victim-dotdot": (
        _set(
            "latency.reference_victims",
            {"..": {"arch": "resnet20", "num_classes": 10, "in_channels": 3, "image_size": 32}},
        ),
        ["latency.reference_victims...", "'..'"],
    ),  # fmt: skip
    # numbers: the schema's minimum lets NaN through
    "dcp-nu-nan": (_set("defenses.DCP.nu", NAN), ["defenses.DCP.nu", "nan"]),
    "victim-lr-nan": (_set("victims.digits_lenet5.train.lr", NAN), ["victims.digits_lenet5.train.lr"]),
    "random-eps-nan": (_set("defenses.Random.params", [0.5, NAN]), ["defenses.Random.params[1]", "nan"]),
    "random-eps-inf": (_set("defenses.Random.params", [INF]), ["defenses.Random.params[0]", "inf"]),
    "mad-eps-minus-inf": (_set("defenses.MAD.params", [-INF]), ["defenses.MAD.params[0]", "-inf"]),
    "holdout-nan": (_set("data.attacker_holdout", NAN), ["data.attacker_holdout"]),
    "latency-halfwidth-inf": (_set("latency.target_halfwidth", INF), ["latency.target_halfwidth"]),
    "latency-max-seconds-nan": (_set("latency.max_seconds", NAN), ["latency.max_seconds"]),
    "member-alpha-nan": (
        _set("victims.digits_misleader.misleader.members.0.alpha", NAN),
        ["victims.digits_misleader.misleader.members[0].alpha"],
    ),
    "knockoff-lr-inf": (_set("knockoff.lr", INF), ["knockoff.lr", "inf"]),
    "dfme-epsilon-nan": (
        _set("datafree.attacks.dfme.grad_epsilon", NAN),
        ["datafree.attacks.dfme.grad_epsilon"],
    ),
    "gamma-by-dataset-nan": (_set("defenses.DCP.gamma_by_dataset", {"cifar100": NAN}), ["gamma_by_dataset"]),
    # budgets that cannot pay for one iteration: the attack would not train
    "dfme-budget-zero": (
        _set("datafree.attacks.dfme.query_budget", 0),
        ["datafree.attacks.dfme", "query_budget 0"],
    ),
    "maze-budget-below-one-iteration": (
        _set("datafree.attacks.maze.query_budget", 1000),
        ["datafree.attacks.maze", "query_budget 1000", "1920 queries"],
    ),
    # whole numbers written as floats: refused naming the key, before any job (a stage would fail late)
    "batch-size-float": (
        _set("queries.batch_size", 32.0),
        ["queries.batch_size", "whole number", "write 32"],
    ),
    "dfme-budget-float": (
        _set("datafree.attacks.dfme.query_budget", 2.0e5),
        ["datafree.attacks.dfme.query_budget", "write 200000"],
    ),
    "knockoff-epochs-float": (_set("knockoff.epochs", 100.0), ["knockoff.epochs", "write 100"]),
    "seed-float": (_set("seeds", [0, 1.0]), ["seeds[1]", "write 1"]),
    # values no float32 answer survives
    "sweep-1e300": (_set("defenses.DCP.params", [0.5, 1e300]), ["defenses.DCP.params", "1e+300"]),
    # plans above the bounds (msdefense.plan.PLAN_BOUNDS) without allow_large_plan
    "thousand-seeds": (_set("seeds", list(range(1000))), ["jobs", "1000 seeds", "allow_large_plan=true"]),
    "sweep-of-ten-thousand": (
        _set("defenses.DCP.params", [i / 1000 for i in range(10_000)]),
        ["clones per job", "defense DCP", "allow_large_plan=true"],
    ),
    "budget-of-1e12": (
        _set("datafree.attacks.dfme.query_budget", 10**12),
        ["datafree iterations", "datafree.attacks.dfme.query_budget"],
    ),
}


def test_a_long_sweep_is_shown_briefly_in_a_message() -> None:
    config = copy.deepcopy(DEFAULT)
    config["defenses"]["DCP"]["params"] = [i / 1000 for i in range(1, 10_000)]
    config["defenses"]["DCP"]["params"].remove(1.5)
    with pytest.raises(ConfigError) as err:
        checked(config)
    assert "(9,998 values)" in str(err.value) and len(str(err.value)) < 400


def test_a_large_plan_runs_when_the_user_says_so() -> None:
    config = copy.deepcopy(DEFAULT)
    config["seeds"] = list(range(1000))
    config["allow_large_plan"] = "true"  # as --config allow_large_plan=true gives it
    checked(config)
    assert config["allow_large_plan"] is True


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_config_is_refused_naming_the_key(name: str) -> None:
    edit, must_mention = HOSTILE[name]
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(ConfigError) as info:
        checked(config)
    text = str(info.value)
    for fragment in must_mention:
        assert fragment in text, f"{fragment!r} not in: {text}"


def test_names_the_check_allows_pass_snakemake_too(tmp_path: Path) -> None:
    """Through the workflow, not only the config check: 64-character names (as long as allowed,
    with repeats short of Snakemake's periodicity limit) in every named section plan a DAG."""
    config = yaml.safe_load((ROOT / "tests" / "data" / "tiny.yaml").read_text())
    long = ("x" * 18 + "y") * 3 + "z" * 7  # 64 characters, no unit repeated 20 times at the end
    assert len(long) == 64
    config["experiment"] = long
    for section in ("victims", "transfer_sets", "defenses"):
        old = sorted(config[section])[0]
        new = f"{section[0]}{long[1:]}"
        text = yaml.safe_dump(config)
        config = yaml.safe_load(text.replace(f"{old}:", f"{new}:").replace(f" {old}\n", f" {new}\n"))
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    load_checked(path, SCHEMA)
    cmd = [
        SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(path),
        "-n",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit(600))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert long in proc.stdout


def test_the_default_passes_and_names_of_64_characters_do(tmp_path: Path) -> None:
    config = copy.deepcopy(DEFAULT)
    name = ("m" * 15 + "n") * 4  # 64 characters, no unit repeated 20 times at the end
    _rename("victims", "digits_misleader", name)(config)
    for attack in config["datafree"]["attacks"].values():
        attack.pop("victims", None)
    config["datafree"]["victims"] = ["digits_lenet5", name]
    checked(config)
    checked(copy.deepcopy(DEFAULT))


def test_the_schema_and_the_wildcards_use_the_package_name_pattern() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["definitions"]["name"]["pattern"] == NAME_PATTERN
    assert "NAME_WILDCARD" in (ROOT / "rules" / "common.smk").read_text()


DEFAULT_TEXT = (ROOT / "config" / "config.yaml").read_text()
HOSTILE_FILES = {
    "repeated-top-level-key": (DEFAULT_TEXT + "seeds: [99]\n", ["'seeds'", "lines 4 and"]),
    "repeated-victim-block": (
        DEFAULT_TEXT.replace("victims:\n", "victims:\n  digits_misleader: {dataset: digits}\n", 1),
        ["'digits_misleader'", "lines 13 and"],
    ),
    "repeated-option": (
        DEFAULT_TEXT.replace("    nu: 1000.0\n", "    nu: 1000.0\n    nu: 1.0\n", 1),
        ["'nu'"],
    ),
    "yte-template": ("__use_yte__: true\n" + DEFAULT_TEXT, ["__use_yte__", "trust"]),
    "not-yaml": ("victims: [unclosed\n", ["not valid YAML"]),
    "not-a-mapping": ("- experiment\n- default\n", ["expected a mapping"]),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_config_file_is_refused_naming_the_file(name: str, tmp_path: Path) -> None:
    text, must_mention = HOSTILE_FILES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_checked(path, SCHEMA)
    message = str(info.value)
    for fragment in [str(path), *must_mention]:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_merge_keys_may_be_overridden() -> None:
    path = ROOT / "config" / "schema.yaml"  # uses <<: *sgd_properties, then adds keys
    assert load_config_file(path)["properties"]["knockoff"]["properties"]["epochs"]["minimum"] == 1


def _replaced(context: str, old: str, new: str) -> str:
    """The default config's text with ``old`` replaced by ``new`` inside ``context`` (which must be
    there: a hostile file identical to the default would run the whole experiment)."""
    assert context in DEFAULT_TEXT, context
    return DEFAULT_TEXT.replace(context, context.replace(old, new), 1)


@pytest.mark.parametrize(
    "name, text, must_mention",
    [
        ("dotdot", DEFAULT_TEXT.replace("experiment: default", "experiment: '..'"), ["experiment", "'..'"]),
        ("nan", DEFAULT_TEXT.replace("nu: 1000.0", "nu: .nan", 1), ["defenses.DCP.nu"]),
        ("repeated", DEFAULT_TEXT + "seeds: [99]\n", ["'seeds'", "appears twice"]),
        (
            "unknown-arch",
            _replaced(
                "  digits_lenet5:\n    dataset: digits\n    arch: lenet5\n",
                "arch: lenet5",
                "arch: resnet9000",
            ),
            ["victims.digits_lenet5.arch", "resnet9000"],
        ),
    ],
)
def test_snakemake_refuses_before_any_job(
    name: str, text: str, must_mention: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(path), "--cores", "1"],
        capture_output=True, text=True, timeout=limit(300),
    )  # fmt: skip
    assert proc.returncode != 0
    for fragment in must_mention:
        assert fragment in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path.parent / "victims").exists()


@pytest.mark.parametrize(
    ("given", "expected"),
    [("false", False), ("No", False), ("0", False), ("off", False), ("TRUE", True), ("yes", True)],
)
def test_command_line_switches_accept_the_spellings_users_type(given: str, expected: bool) -> None:
    """``--config rerun_on_code_change=false`` reaches the config as the text 'false'."""
    from msdefense.preflight import normalise_flags

    config = {"rerun_on_code_change": given}
    normalise_flags(config)
    assert config["rerun_on_code_change"] is expected


def test_a_switch_that_is_no_spelling_of_true_or_false_is_refused_naming_the_key() -> None:
    from msdefense.preflight import normalise_flags

    with pytest.raises(ConfigError, match=r"rerun_on_code_change: 'maybe' is not a switch; give one of true"):
        normalise_flags({"rerun_on_code_change": "maybe"})
    config = {"rerun_on_code_change": False}
    normalise_flags(config)  # a boolean from a config file stays as it is
    assert config["rerun_on_code_change"] is False


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("query_budget", 2.0e5, "must be a whole number, got 200000.0 (write 200000)"),
        ("query_budget", "2e5", "must be a whole number, got '2e5' (YAML reads 2e5 as text"),
        ("batch_size", 32.0, "must be a whole number, got 32.0 (write 32)"),
        ("lr_G", "1e-4", "must be a number, got '1e-4' (YAML reads 1e-4 as text: write 1.0e-4)"),
    ],
)
def test_a_data_free_setting_of_the_wrong_type_is_refused_naming_its_key(
    default_config: dict, key: str, value: object, says: str
) -> None:
    """A float budget used to pass every check and kill the first data-free job late (TypeError in range())."""
    default_config["datafree"]["attacks"]["maze"][key] = value
    with pytest.raises(ConfigError) as info:
        checked(default_config)
    assert f"config key datafree.attacks.maze.{key}: {says}" in str(info.value)


def test_config_readme_quotes_the_plan_bounds_of_the_code() -> None:
    from msdefense.plan import PLAN_BOUNDS

    row = next(
        line
        for line in (ROOT / "config" / "README.md").read_text().splitlines()
        if "allow_large_plan" in line
    )
    assert all(f"{bound:,}" in row for bound in PLAN_BOUNDS.values())
