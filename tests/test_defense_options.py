"""Each defense declares its options once; a config entry is checked against that declaration.

Unknown keys, wrong types, values out of range, NaN / infinity and choices not in the list fail
in ``check_config`` (so before any Snakemake job) with a message naming ``defenses.<name>.<key>``;
the resolved defaults are the values the defense objects use.
"""

from __future__ import annotations

import copy
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate
from torch import nn

from msdefense.config import ConfigError, check_config
from msdefense.defenses import (
    DEFENSES,
    OptionError,
    build_defense,
    check_defense_config,
    defense_options,
    required_aux_models,
)
from msdefense.defenses.adaptive_misinformation import AdaptiveMisinformation
from msdefense.defenses.dcp import DCP
from msdefense.defenses.grad import GRAD
from msdefense.defenses.mad import MAD, alternating_projections
from msdefense.defenses.options import Option, declare, defaults, resolve
from msdefense.defenses.registry import ENTRY_KEYS
from msdefense.defenses.reverse_sigmoid import ReverseSigmoid

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"

# The declared defaults, written out: changing one changes every output of that method.
EXPECTED_DEFAULTS = {
    "None": {},
    "DCP": {"gamma": 0.2, "gamma_by_dataset": {}, "nu": 1000.0, "clip_odds": True},
    "ReverseSigmoid": {"gamma": 0.2, "gamma_by_dataset": {}, "clip_odds": True},
    "AdaptiveMisinformation": {"nu": 1000.0},
    "Random": {},
    "TopK": {},
    "Rounding": {},
    "MAD": {
        "variant": "simplified",
        "optim": "projections",
        "max_iters": 100,
        "tol": 1e-4,
        "surrogate_epochs": 0,
    },
    "GRAD": {"target": "all_ones", "surrogate_epochs": 10},
}


def tiny_aux(cfg: dict) -> dict[str, nn.Module]:
    """A flatten + linear classifier on [B, 1, 8, 8] for every auxiliary model the entry needs."""
    return {name: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)) for name in required_aux_models(cfg)}


def checked(config: dict) -> None:
    """Schema (as the Snakefile applies it) then the registry checks."""
    validate(config, str(SCHEMA))
    check_config(config)


# ----------------------------------------------------------------------------------------------
# Bad entries are refused, naming the key

# (defense entry of config/config.yaml, key, value as YAML text, fragments of the message)
BAD = [
    (
        "DCP",
        "betta",
        "2.0",
        ["defenses.DCP.betta", "unknown option of method DCP", "gamma, gamma_by_dataset"],
    ),
    ("DCP", "nuu", "3", ["defenses.DCP.nuu", "did you mean 'nu'"]),
    ("MAD", "optim", "lineserch", ["defenses.MAD.optim", "did you mean 'linesearch'", "'projections'"]),
    ("MAD", "variamt", "original", ["defenses.MAD.variamt", "did you mean 'variant'"]),
    ("DCP", "nu", ".nan", ["defenses.DCP.nu", "not a finite number", "a number > 0"]),
    ("DCP", "nu", ".inf", ["defenses.DCP.nu", "not a finite number"]),
    ("DCP", "nu", "-.inf", ["defenses.DCP.nu", "not a finite number"]),
    ("DCP", "nu", "big", ["defenses.DCP.nu", "expected a number > 0", "str 'big'"]),
    ("DCP", "nu", "0", ["defenses.DCP.nu", "out of range", "> 0"]),
    ("DCP", "gamma", "true", ["defenses.DCP.gamma", "expected a number > 0", "bool"]),
    ("DCP", "clip_odds", "1", ["defenses.DCP.clip_odds", "expected true or false", "int 1"]),
    ("DCP", "gamma_by_dataset", "{cifar100: .nan}", ["defenses.DCP.gamma_by_dataset.cifar100", "finite"]),
    ("DCP", "gamma_by_dataset", "{cifar100: -0.1}", ["defenses.DCP.gamma_by_dataset.cifar100", "> 0"]),
    ("DCP", "gamma_by_dataset", "{cifa100: 0.1}", ["defenses.DCP.gamma_by_dataset", "cifa100", "cifar100"]),
    ("DCP", "gamma_by_dataset", "0.1", ["defenses.DCP.gamma_by_dataset", "expected a mapping"]),
    ("DCP", "params", "[0.4, .nan]", ["defenses.DCP.params[1]", "not a finite number"]),
    ("DCP", "params", "[.inf]", ["defenses.DCP.params[0]", "not a finite number"]),
    (
        "ReverseSigmoid",
        "nu",
        "1000.0",
        ["defenses.ReverseSigmoid.nu", "unknown option of method ReverseSigmoid"],
    ),
    (
        "AdaptiveMisinformation",
        "gamma",
        "0.2",
        ["defenses.AdaptiveMisinformation.gamma", "known: method, params, nu"],
    ),
    ("Random", "seed", "3", ["defenses.Random.seed", "known: method, params"]),
    ("MAD", "max_iters", "0", ["defenses.MAD.max_iters", "an integer >= 1"]),
    ("MAD", "max_iters", "2.5", ["defenses.MAD.max_iters", "expected an integer"]),
    ("MAD", "tol", "-1e-4", ["defenses.MAD.tol", ">= 0"]),
    ("MAD", "surrogate_epochs", "true", ["defenses.MAD.surrogate_epochs", "expected an integer"]),
    ("GRAD", "target", "max_norm", ["defenses.GRAD.target", "'all_ones', 'min_ip'"]),
    ("GRAD", "surrogate_epochs", "-1", ["defenses.GRAD.surrogate_epochs", ">= 0"]),
]


@pytest.mark.parametrize(
    "defense, key, text, must_mention",
    [pytest.param(*case, id=f"{case[0]}.{case[1]}={case[2]}") for case in BAD],
)
def test_check_config_refuses_bad_option(default_config, defense, key, text, must_mention) -> None:
    default_config["defenses"][defense][key] = yaml.safe_load(text)
    with pytest.raises(ConfigError) as info:
        checked(default_config)
    message = str(info.value)
    assert message.startswith("config key defenses."), message
    for fragment in must_mention:
        assert fragment in message, f"{fragment!r} not in error: {message}"


@pytest.mark.parametrize(
    "defense, key, text",
    [("DCP", "betta", "2.0"), ("MAD", "optim", "lineserch"), ("DCP", "nu", ".nan")],
    ids=["unknown-key", "bad-choice", "nan"],
)
def test_snakemake_dry_run_refuses_bad_option_before_any_job(tmp_path: Path, defense, key, text) -> None:
    config = yaml.safe_load((ROOT / "tests" / "data" / "tiny.yaml").read_text())
    config["defenses"][defense][key] = yaml.safe_load(text)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert f"{key}: {text}" in bad.read_text()  # the YAML spelling itself (.nan) reaches snakemake
    snakemake = Path(sys.executable).parent / "snakemake"
    proc = subprocess.run(
        [str(snakemake), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(bad), "--cores", "1", "-n"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = proc.stdout + proc.stderr  # a dry run reports the error on stdout
    assert proc.returncode != 0
    assert "ConfigError" in output and f"config key defenses.{defense}.{key}" in output, output[-2000:]
    assert "Job stats" not in output
    assert not (tmp_path / "results").exists()


def test_build_defense_checks_a_partial_entry_too() -> None:
    with pytest.raises(OptionError, match="DCP.betta: unknown option"):
        build_defense({"method": "DCP", "betta": 2.0}, "digits")
    with pytest.raises(ValueError, match="not a finite number"):
        build_defense({"method": "DCP", "nu": float("nan")}, "digits")
    with pytest.raises(OptionError, match="not a finite number"):
        required_aux_models({"method": "MAD", "tol": float("inf")})


def test_entry_needs_method_and_a_sweep() -> None:
    with pytest.raises(OptionError, match="defenses.x.method is required"):
        check_defense_config("x", {"params": [0.1]})
    with pytest.raises(OptionError, match="defenses.x.method: unknown defense method 'Magic'"):
        check_defense_config("x", {"method": "Magic", "params": [0.1]})
    with pytest.raises(OptionError, match="defenses.x.params is required"):
        check_defense_config("x", {"method": "DCP"})
    with pytest.raises(OptionError, match="non-empty list"):
        check_defense_config("x", {"method": "DCP", "params": []})
    with pytest.raises(OptionError, match=r"params\[0\]: expected a number >= 0"):
        check_defense_config("x", {"method": "DCP", "params": [True]})
    with pytest.raises(OptionError, match="values must be >= 0"):
        check_defense_config("x", {"method": "DCP", "params": [0.1, -0.5]})


def test_counting_sweeps_take_whole_numbers_in_their_range() -> None:
    with pytest.raises(OptionError, match=r"defenses.x.params: TopK takes whole numbers .* got \[1.5\]"):
        check_defense_config("x", {"method": "TopK", "params": [1, 1.5]})
    with pytest.raises(OptionError, match=r"values must be >= 1 \(k counts the classes"):
        check_defense_config("x", {"method": "TopK", "params": [0]})
    with pytest.raises(OptionError, match=r"values must be <= 7 \(float32"):
        check_defense_config("x", {"method": "Rounding", "params": [2, 9]})
    assert check_defense_config("x", {"method": "Rounding", "params": [0, 3]})["params"] == [0.0, 3.0]


# ----------------------------------------------------------------------------------------------
# Declared defaults and what the defense objects use


@pytest.mark.parametrize("method", sorted(DEFENSES))
def test_resolved_defaults_are_the_declared_ones(method: str) -> None:
    entry = {"method": method, "params": DEFENSES[method].example_sweep()[:1]}
    assert check_defense_config(method, entry) == {**entry, **EXPECTED_DEFAULTS[method]}
    assert defense_options({"method": method}) == EXPECTED_DEFAULTS[method]


@pytest.mark.parametrize("method", sorted(DEFENSES))
def test_every_method_accepts_its_declared_options_at_their_defaults(method: str) -> None:
    sweep = DEFENSES[method].example_sweep()[:2]
    entry = {"method": method, "params": sweep, **defaults(DEFENSES[method].options)}
    assert check_defense_config("d", entry) == {**entry, "params": sweep}
    explicit, implicit = (
        build_defense(entry, "digits", tiny_aux(entry)),
        build_defense({"method": method}, "digits", tiny_aux({"method": method})),
    )
    assert explicit.describe() == implicit.describe()


def test_a_config_with_every_option_of_every_method_is_valid(default_config) -> None:
    default_config["defenses"] = {
        name: {"method": name, "params": m.example_sweep()[:1], **defaults(m.options)}
        for name, m in DEFENSES.items()
    }
    default_config["defenses"]["undefended"] = default_config["defenses"].pop("None")
    default_config["defenses"]["DCP"]["gamma_by_dataset"] = {"cifar100": 0.1}
    for v in default_config["victims"].values():
        v.pop("defenses", None)
    default_config["datafree"]["params"] = {"DCP": [0.0]}
    for attack in default_config["datafree"]["attacks"].values():
        attack.pop("params", None)  # a scope must narrow datafree.params, replaced here
    checked(default_config)


def test_defense_objects_use_the_declared_defaults() -> None:
    aux = tiny_aux({"method": "MAD", "variant": "original"})
    mad = build_defense({"method": "MAD", "variant": "original"}, "digits", aux)
    assert (mad.max_iters, mad.tol, mad.optim) == (100, 1e-4, "projections")
    assert required_aux_models({"method": "MAD"}) == ("surrogate_e0",)
    assert required_aux_models({"method": "GRAD"}) == ("surrogate_e10",)
    dcp = build_defense({"method": "DCP"}, "cifar10")
    assert (dcp.gamma, dcp.nu, dcp.clip_odds) == (0.2, 1000.0, True)
    rs = build_defense({"method": "ReverseSigmoid", "gamma_by_dataset": {"cifar10": 0.1}}, "cifar10")
    assert (rs.gamma, rs.clip_odds) == (0.1, True)
    am = {"method": "AdaptiveMisinformation"}
    assert build_defense(am, "digits", tiny_aux(am)).nu == 1000.0
    # the constructors' keyword defaults come from the same declaration
    classes = {
        "DCP": DCP,
        "ReverseSigmoid": ReverseSigmoid,
        "AdaptiveMisinformation": AdaptiveMisinformation,
        "MAD": MAD,
        "GRAD": GRAD,
    }
    for method, cls in classes.items():
        declared = DEFENSES[method].options
        for name, param in inspect.signature(cls).parameters.items():
            if name in declared:
                assert param.default == declared[name].default, (cls.__name__, name)
    signature = inspect.signature(alternating_projections).parameters
    assert (signature["max_iters"].default, signature["tol"].default) == (100, 1e-4)


def test_constructors_check_through_the_declaration() -> None:
    with pytest.raises(OptionError, match="DCP.nu: nan is not a finite number"):
        DCP(nu=float("nan"))
    with pytest.raises(OptionError, match="ReverseSigmoid.gamma: .* out of range"):
        ReverseSigmoid(gamma=0.0)
    with pytest.raises(OptionError, match="MAD.optim"):
        MAD(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), "original", optim="lineserch")
    assert DCP(gamma=1, nu=50).describe() == {"method": "DCP", "gamma": 1.0, "nu": 50.0, "clip_odds": True}


# ----------------------------------------------------------------------------------------------
# One home for the option names: the declaration, not the schema


def test_schema_lists_only_method_and_params_and_no_option_defaults() -> None:
    entry = yaml.safe_load(SCHEMA.read_text())["properties"]["defenses"]["additionalProperties"]
    assert set(entry["properties"]) == set(ENTRY_KEYS) == {"method", "params"}
    assert set(entry["required"]) == {"method", "params"}
    declared = {name for m in DEFENSES.values() for name in m.options}
    assert declared.isdisjoint(entry["properties"]) and "default" not in str(entry["properties"])


def test_option_type_rules() -> None:
    nu = Option("nu", float, 1.0, exclusive_minimum=0)
    assert nu.check(50, "k") == 50.0 and isinstance(nu.check(50, "k"), float)  # an int is a number
    with pytest.raises(OptionError, match="not a finite number"):
        nu.check(10**400, "k")
    assert Option("n", int, 1, minimum=0).check(0, "k") == 0
    with pytest.raises(TypeError, match="type must be"):
        Option("xs", list, [])
    with pytest.raises(ValueError, match="declared twice"):
        declare(nu, nu)
    with pytest.raises(OptionError, match="default of bad"):
        declare(Option("bad", int, -1, minimum=0))
    options = declare(nu, Option("by", dict, {}, exclusive_minimum=0))
    resolved = resolve(options, {"by": {"a": 2}}, key="x")
    assert resolved == {"nu": 1.0, "by": {"a": 2.0}}
    assert defaults(options)["by"] is not defaults(options)["by"]  # mappings are copied


def test_entries_of_the_shipped_configs_resolve() -> None:
    for path in [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "paper").glob("*.yaml"))]:
        for name, entry in yaml.safe_load(path.read_text())["defenses"].items():
            resolved = check_defense_config(name, copy.deepcopy(entry))
            assert {k: v for k, v in resolved.items() if k in entry and k != "params"} == {
                k: v for k, v in entry.items() if k != "params"
            }, (path.name, name)


def _yaml_text(value: object) -> str:
    """How a default is written in YAML (``true``, ``0.0001``, ``{}``)."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


@pytest.mark.parametrize("method", sorted(DEFENSES))
def test_docs_list_the_declared_options_with_their_defaults(method: str) -> None:
    text = (ROOT / "docs" / "methods.md").read_text()
    section = text.split(f"\n### {method}\n", 1)[1].split("\n### ", 1)[0]
    rows = {
        line.split("`")[1]: line for line in section.splitlines() if line.startswith("| `")
    }  # option name -> its table row
    declared = defaults(DEFENSES[method].options)
    assert set(rows) == set(declared)
    for name, default in declared.items():
        assert f"| `{_yaml_text(default)}` |" in rows[name], (name, rows[name])
    readme = (ROOT / "config" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `defenses.<name>.<option>` |"))
    listed = row.split(f" {method} ", 1)[1].split(";", 1)[0] if declared else ""
    assert all(f"`{name}`" in listed for name in declared), (method, listed)
