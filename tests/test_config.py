"""Bad configs fail at validation, before any job runs, with an error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from msdefense.config import ConfigError, datafree_runs, knockoff_runs
from msdefense.preflight import preflight
from msdefense.training import SGDRecipe

ROOT = Path(__file__).resolve().parents[1]

SCHEMA = str(ROOT / "config" / "schema.yaml")


def validated(config: dict) -> dict:
    """The Snakefile's checks, in its order."""
    preflight(config, validate=lambda c: validate(c, SCHEMA))
    return config


def test_default_config_is_valid_and_gets_defaults(default_config) -> None:
    cfg = validated(default_config)
    assert cfg["seeds"] == [0, 1, 2, 3, 4] and cfg["data"]["split_seed"] == 0
    assert cfg["latency"]["repeats"] == 20 and cfg["latency"]["batch_sizes"] == [1, 64]
    # SGD defaults have one home, SGDRecipe (the schema no longer fills them in)
    assert "weight_decay" not in cfg["victims"]["digits_lenet5"]["train"]
    recipe = SGDRecipe.from_config(cfg["knockoff"])
    assert (recipe.momentum, recipe.nesterov, recipe.weight_decay) == (0.9, True, 5e-4)
    runs = list(knockoff_runs(cfg))
    assert ("digits_lenet5", "digits_heldout", "DCP", "1.5") in runs
    assert recipe.patience is not None and recipe.epochs >= 50  # clones train to their plateau, under a cap
    n_params = sum(len(d["params"]) for d in cfg["defenses"].values())
    trained = [r for r in runs if r[0] == "digits_lenet5"]
    assert len(trained) == len(cfg["victims"]["digits_lenet5"]["transfer_sets"]) * n_params
    # derived victims are attacked at their own subset: MISLEADER undefended, int8 undefended and DCP
    assert {r[2] for r in runs if r[0] == "digits_misleader"} == {"undefended"}
    int8 = [r for r in runs if r[0] == "digits_lenet5_ptq_x86"]
    assert {r[2] for r in int8} == {"undefended", "DCP"} and {r[1] for r in int8} == {"digits_heldout"}
    df_runs = list(datafree_runs(cfg))
    assert {a for a, *_ in df_runs} == {"dfme", "maze", "maze_as_logits"}
    # DFME, the costly attack, is scoped to the LeNet-5 undefended and behind DCP
    assert {(v, d) for a, v, d, _ in df_runs if a == "dfme"} == {
        ("digits_lenet5", "undefended"),
        ("digits_lenet5", "DCP"),
    }
    # MAZE meets every baseline at two values or more, and the int8 victim undefended and behind DCP
    maze = [(v, d) for a, v, d, _ in df_runs if a == "maze"]
    for method in ("AdaptiveMisinformation", "Random", "MAD", "GRAD"):
        assert maze.count(("digits_lenet5", method)) >= 2, method
    assert {d for v, d in maze if v == "digits_lenet5_ptq_x86"} == {"undefended", "DCP"}
    # the original view's attack is scoped to the ensemble (its teacher read correctly: maze)
    as_logits = {(a, v, d, p) for a, v, d, p in df_runs if a.endswith("_as_logits")}
    assert as_logits == {
        (a, v, "undefended", "0.0") for a in ("maze_as_logits",) for v in ("digits_misleader",)
    }
    methods_attacked = {cfg["defenses"][d]["method"] for _, _, d, _ in df_runs}
    # ReverseSigmoid is not attacked data-free: above β = 1 it is DCP
    assert methods_attacked == {
        "None",
        "DCP",
        "AdaptiveMisinformation",
        "Random",
        "MAD",
        "GRAD",
        "TopK",
        "Rounding",
    }
    methods = {d["method"] for d in cfg["defenses"].values()}
    assert methods == methods_attacked | {"ReverseSigmoid"}


def _set(cfg: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for p in parents:
        cfg = cfg[p]
    if value is KeyError:
        del cfg[last]
    else:
        cfg[last] = value


@pytest.mark.parametrize(
    "path, value, error, must_mention",
    [
        (
            "victims.digits_lenet5.dataset",
            "imagenet21k",
            ConfigError,
            ["victims.digits_lenet5.dataset", "digits"],
        ),
        ("victims.digits_lenet5.arch", "vgg99", ConfigError, ["victims.digits_lenet5.arch", "lenet5"]),
        ("defenses.DCP.method", "Magic", ConfigError, ["defenses.DCP.method", "DCP"]),
        ("knockoff.arch", "nope", ConfigError, ["knockoff.arch"]),
        (
            "victims.digits_lenet5.transfer_sets",
            ["photos", "nowhere"],
            ConfigError,
            ["transfer_sets", "nowhere"],
        ),
        (
            "transfer_sets.photos.source",
            "internet",
            ConfigError,
            ["transfer_sets.photos.source", "photo_crops"],
        ),
        ("defenses.DCP.params", [0.1, -0.5], WorkflowError, ["params", "-0.5", "minimum"]),
        ("defenses.DCP.params", [0.1, "big"], WorkflowError, ["params", "'big' is not of type 'number'"]),
        ("knockoff.epochs", KeyError, WorkflowError, ["'epochs' is a required property", "knockoff"]),
        ("victims.digits_lenet5.train.lr", "fast", WorkflowError, ["lr", "not of type 'number'"]),
        ("seeds", [0, 1.5], WorkflowError, ["1.5", "not of type 'integer'"]),
        ("seeds", [0, 0], WorkflowError, ["seeds", "non-unique"]),
        ("seeds", [], WorkflowError, ["seeds", "should be non-empty"]),
        ("seed", 0, ConfigError, ["config key seed is no longer read", "seeds: [0]"]),
        ("data.split_seed", -1, WorkflowError, ["split_seed", "minimum"]),
        ("knockoff.epocs", 3, WorkflowError, ["epocs", "Additional properties"]),
        ("defenses.undefended.params", [0.0, 0.1], ConfigError, ["defenses.undefended.params"]),
        ("defenses.DCP.params", [0.1, 0.10], ConfigError, ["duplicate"]),
        ("data.attacker_holdout", 0.0, ConfigError, ["data.attacker_holdout", "digits_heldout"]),
        ("datafree.student", "vgg99", ConfigError, ["datafree.student", "lenet5"]),
        ("datafree.victims", ["nobody"], ConfigError, ["datafree.victims", "digits_lenet5"]),
        (
            "datafree.attacks.dfme.preset",
            "dfme_mnist",
            ConfigError,
            ["datafree.attacks.dfme.preset", "dfme_svhn"],
        ),
        ("datafree.attacks.dfme.lr_g", 0.1, ConfigError, ["datafree.attacks.dfme.lr_g", "lr_G"]),
        # an empty list used to mean "every victim"
        ("datafree.victims", [], ConfigError, ["datafree.victims: an empty list", "leave the key out"]),
        ("datafree.attacks.maze.victims", [], ConfigError, ["datafree.attacks.maze.victims: an empty list"]),
        (
            "transfer_sets.photos.crop_min",
            120,
            ConfigError,
            ["transfer_sets.photos.crop_min: 120 is above crop_max"],
        ),
        ("datafree.attacks.dfme.grad_m", 0, ConfigError, ["datafree.attacks.dfme", "grad_m"]),
        ("datafree.params.DCP", [0.3], ConfigError, ["datafree.params.DCP", "0.3", "defenses.DCP.params"]),
        ("datafree.params.Magic", [0.3], ConfigError, ["datafree.params", "Magic"]),
        ("datafree.attacks.dfme", {"query_budget": 10}, WorkflowError, ["'preset' is a required property"]),
        (
            "victims.digits_lenet5_ptq_x86.quantize.source",
            "nobody",
            ConfigError,
            ["quantize.source", "nobody"],
        ),
        (
            "victims.digits_lenet5_ptq_x86.quantize.source",
            "digits_misleader",
            ConfigError,
            ["quantize.source", "must be a trained victim"],
        ),
        ("victims.digits_lenet5_ptq_x86.quantize.backend", "fbgemm2", WorkflowError, ["backend", "fbgemm2"]),
        (
            "victims.digits_lenet5_ptq_x86.quantize",
            {"source": "digits_lenet5", "mode": "qat", "backend": "x86", "qat_epochs": 0},
            ConfigError,
            ["digits_lenet5_ptq_x86.quantize"],
        ),
        (
            "victims.digits_misleader.misleader.teacher",
            "nobody",
            ConfigError,
            ["misleader.teacher", "nobody"],
        ),
        (
            "victims.digits_misleader.train",
            {"epochs": 1, "batch_size": 1, "lr": 0.1},
            ConfigError,
            ["exactly one"],
        ),
        ("victims.digits_lenet5.arch", KeyError, ConfigError, ["victims.digits_lenet5.arch is required"]),
        ("victims.digits_lenet5_ptq_x86.defenses", {"DCP": [0.3]}, ConfigError, ["defenses.DCP", "0.3"]),
        ("latency.victims", ["nobody"], ConfigError, ["latency.victims", "nobody"]),
        ("data.validation_fraction", 0.7, ConfigError, ["attacker_holdout", "validation_fraction", "< 1"]),
        (
            "victims.digits_lenet5_ptq_x86.arch",
            "lenet5",
            ConfigError,
            ["digits_lenet5_ptq_x86.arch", "source"],
        ),
        (
            "datafree.attacks.maze_as_logits.victims",
            ["digits_lenet5_qat_x86"],
            ConfigError,
            ["datafree.attacks.maze_as_logits.victims", "digits_lenet5_qat_x86"],
        ),
        (
            "datafree.attacks.maze_as_logits.params",
            {"DCP": [0.4]},
            ConfigError,
            ["datafree.attacks.maze_as_logits.params.DCP", "datafree.params.DCP"],
        ),
        ("datafree.attacks.maze_as_logits.oracle_view", "logits", WorkflowError, ["oracle_view", "enum"]),
        ("knockoff.argmax_defenses", ["nobody"], ConfigError, ["knockoff.argmax_defenses", "nobody"]),
        ("knockoff.argmax_defenses", ["DCP"], ConfigError, ["knockoff.argmax_defenses", "method: None"]),
        ("knockoff.labels", "soft", None, None),  # with argmax_defenses below: no argmax to restrict
        ("knockoff.restored_defenses", ["nobody"], ConfigError, ["knockoff.restored_defenses", "nobody"]),
        ("knockoff.restored_defenses", ["DCP"], ConfigError, ["knockoff.restored_defenses", "method: None"]),
        ("knockoff.defense_aware.shadows", 0, WorkflowError, ["shadows", "minimum"]),
        ("knockoff.labels", ["soft", "restored", "logits"], WorkflowError, ["labels"]),
    ],
)
def test_bad_config_names_the_key(default_config, path, value, error, must_mention) -> None:
    if error is None:  # argmax_defenses without argmax among the labels
        default_config["knockoff"]["argmax_defenses"] = ["undefended"]
        error, must_mention = ConfigError, ["knockoff.argmax_defenses", "include soft and argmax"]
    _set(default_config, path, value)
    with pytest.raises(error) as info:
        validated(default_config)
    text = str(info.value)
    for fragment in must_mention:
        assert fragment in text, f"{fragment!r} not in error: {text}"


def test_paper_datasets_need_a_validation_part_and_a_matching_generator_range(default_config) -> None:
    cfg = default_config
    cfg["data"]["validation_fraction"] = 0.0
    validated(cfg)  # digits has its own val split
    cfg["victims"]["digits_lenet5"]["dataset"] = "cub200"
    for name in (
        "digits_misleader",
        "digits_lenet5_ptq_x86",
    ):
        del cfg["victims"][name]
    cfg["latency"]["victims"] = ["digits_lenet5"]
    cfg["datafree"]["victims"] = ["digits_lenet5"]
    for attack in cfg["datafree"]["attacks"].values():
        attack.pop("victims", None)  # the scoped attacks named the removed ensemble
    cfg["data"]["validation_fraction"] = 0.1
    with pytest.raises(ConfigError, match="input_range"):
        validated(cfg)
    for attack in cfg["datafree"]["attacks"].values():
        attack.update(input_range="tanh_to_unit_then_normalise", input_mean=[0.485, 0.456, 0.406])
    validated(cfg)
    cfg["data"]["validation_fraction"] = 0.0
    with pytest.raises(ConfigError, match="validation_fraction must be > 0"):
        validated(cfg)


def test_defense_names_that_read_as_missing_values_are_refused(default_config) -> None:
    default_config["defenses"]["None"] = default_config["defenses"].pop("undefended")
    with pytest.raises(ConfigError, match="defenses.None: this name reads as a missing value"):
        validated(default_config)


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "paper").glob("*.yaml")), ids=lambda p: p.stem)
def test_paper_configs_are_valid(path: Path) -> None:
    validated(yaml.safe_load(path.read_text()))


def test_repeated_values_in_front_of_one_victim_are_refused(default_config) -> None:
    default_config["victims"]["digits_lenet5_ptq_x86"]["defenses"] = {"DCP": [1.5, 1.5]}
    with pytest.raises(ConfigError, match=r"victims.digits_lenet5_ptq_x86.defenses.DCP has duplicate values"):
        validated(default_config)
