"""Config checks beyond the JSON schema: names against the registries, cross-references.

``config/schema.yaml`` validates types, ranges, required keys and fills defaults (Snakemake's
``validate``); :func:`check_config` then checks every name against the registries so a typo
fails before any job runs, with the offending key and the known names in the message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .data import DATASETS, TRANSFER_SOURCES
from .defenses import DEFENSES, OptionError, check_defense_config, required_aux_models
from .models import ARCHITECTURES
from .registry import ImportPathError

# Words pandas.read_csv turns into NaN by default: never usable as names in the tables.
CSV_MISSING_WORDS = {"none", "null", "nan", "na", "n/a", "<na>", "#n/a", "-nan"}


class ConfigError(ValueError):
    """The config names something that does not exist or does not fit together."""


def _known(kind: str, value: object, known: Mapping[str, Any] | tuple[str, ...], key: str) -> None:
    if value not in known:
        raise ConfigError(
            f"config key {key}: unknown {kind} {value!r}; known {kind}s: {', '.join(sorted(known))}"
        )


def format_param(value: float) -> str:
    """The canonical text of a sweep value, used in file paths (``0.1``, ``1.5``, ``0.0025``)."""
    return repr(float(value))


_MOVED_TO_PROFILE = (
    "the rule's default (msdefense.resources), set per site in the profile's set-resources "
    "(profiles/slurm/config.yaml)"
)
#: Keys that are no longer read (dotted paths), with what replaces them.
RENAMED_KEYS = {
    "seed": "seeds: a list of replicate seeds, e.g. seeds: [0] for one run or [0, 1, 2]",
    "resources.mem_mb": _MOVED_TO_PROFILE,
    "resources.runtime": _MOVED_TO_PROFILE,
}


def check_renamed_keys(config: Mapping[str, Any]) -> None:
    """Refuse a key that was renamed or moved, saying what replaces it (run before the schema,
    whose message would only say the key is not allowed)."""
    for key, now in RENAMED_KEYS.items():
        *parents, last = key.split(".")
        node: Any = config
        for part in parents:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and last in node:
            raise ConfigError(f"config key {key} is no longer read; use {now}")


def _pretrainable(arch: str | None, key: str) -> None:
    from .models.imagenet import PRETRAINED

    if arch not in PRETRAINED:
        raise ConfigError(
            f"config key {key}: {arch!r} has no ImageNet weights (a trained victim's arch must be one of "
            f"{', '.join(PRETRAINED)}); set pretrained: false or use one of those"
        )


def check_config(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first bad key of an already schema-validated config."""
    transfers = config["transfer_sets"]
    for name, t in transfers.items():
        _known("transfer source", t["source"], TRANSFER_SOURCES, f"transfer_sets.{name}.source")
        if t["source"] == "dataset":
            if "dataset" not in t:
                raise ConfigError(f"config key transfer_sets.{name}.dataset is required for source 'dataset'")
            _known("dataset", t["dataset"], DATASETS, f"transfer_sets.{name}.dataset")
        if t["source"] == "photo_crops" and "size" not in t:
            raise ConfigError(f"config key transfer_sets.{name}.size is required for source 'photo_crops'")
        if t["source"] == "photo_crops" and t.get("crop_min", 8) > t.get("crop_max", 96):
            raise ConfigError(
                f"config key transfer_sets.{name}.crop_min: {t.get('crop_min', 8)} is above crop_max "
                f"{t.get('crop_max', 96)}; the crop side is drawn between them"
            )
        if t["source"] == "heldout" and config["data"]["attacker_holdout"] <= 0:
            raise ConfigError(
                f"config key data.attacker_holdout must be > 0 for the heldout transfer set {name!r}"
            )
    for name, v in config["victims"].items():
        _known("dataset", v["dataset"], DATASETS, f"victims.{name}.dataset")
        for t in v["transfer_sets"]:
            _known("transfer set", t, transfers, f"victims.{name}.transfer_sets")
        check_victim_kind(config, name)
        if v.get("pretrained"):
            _pretrainable(v.get("arch"), f"victims.{name}.pretrained")
    for name, d in config["defenses"].items():
        if name.lower() in CSV_MISSING_WORDS:
            raise ConfigError(
                f"config key defenses.{name}: this name reads as a missing value in CSV tables "
                f"(pandas.read_csv); name the undefended oracle e.g. 'undefended' (method: None)"
            )
        try:  # a built-in name, or the import path of a method defined outside (docs/api.md)
            _known("defense", d["method"], DEFENSES, f"defenses.{name}.method")
        except ImportPathError as exc:
            raise ConfigError(f"config key defenses.{name}.method: {exc}") from None
        try:  # every key against the method's declared options (names, types, ranges, finite numbers)
            options = check_defense_config(name, d)
        except OptionError as exc:
            raise ConfigError(f"config key {exc}") from None
        for dataset in options.get("gamma_by_dataset", {}):
            _known("dataset", dataset, DATASETS, f"defenses.{name}.gamma_by_dataset")
        if d["method"] == "None" and list(map(float, d["params"])) != [0.0]:
            raise ConfigError(f"config key defenses.{name}.params: the None defense takes params [0.0]")
        texts = [format_param(p) for p in d["params"]]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"config key defenses.{name}.params has duplicate values: {d['params']}")
    _known("architecture", config["knockoff"]["arch"], ARCHITECTURES, "knockoff.arch")
    from .attacks.knockoff import check_narrowing

    try:  # knockoff.argmax_defenses / restored_defenses
        check_narrowing(config["knockoff"], config["defenses"])
    except ValueError as exc:
        raise ConfigError(f"config key {exc}") from None
    if config["knockoff"].get("pretrained"):
        _pretrainable(config["knockoff"]["arch"], "knockoff.pretrained")
    check_datafree(config)
    check_splits(config)
    for v in config["latency"].get("victims", []):
        _known("victim", v, config["victims"], "latency.victims")
    for name in config["victims"]:
        for defense, params in victim_defenses(config, name).items():
            sweep = {format_param(p) for p in config["defenses"][defense]["params"]}
            texts = [format_param(p) for p in params]
            if len(set(texts)) != len(texts):
                raise ConfigError(
                    f"config key victims.{name}.defenses.{defense} has duplicate values: {params}"
                )
            extra = [p for p in params if format_param(p) not in sweep]
            if extra:
                raise ConfigError(
                    f"config key victims.{name}.defenses.{defense}: {extra} not in defenses.{defense}.params"
                )
    for name, ref in config["latency"]["reference_victims"].items():
        _known("architecture", ref["arch"], ARCHITECTURES, f"latency.reference_victims.{name}.arch")
        if name in config["victims"]:
            raise ConfigError(f"config key latency.reference_victims.{name}: the name is already a victim's")


VICTIM_KINDS = ("train", "misleader", "quantize")
# 32×32 datasets whose inputs are (x − 0.5) / 0.5: the range of a tanh generator (DFME, MAZE)
HALF_NORMALISED = ("digits", "cifar10", "cifar100", "svhn", "mnist", "fashionmnist", "gtsrb")


def victim_kind(victim: Mapping[str, Any]) -> str:
    """How a victim comes to be: ``train`` (trained from scratch), ``misleader`` (an ensemble of
    members distilled from a teacher victim) or ``quantize`` (int8 copy of a trained victim)."""
    kinds = [k for k in VICTIM_KINDS if k in victim]
    return kinds[0] if len(kinds) == 1 else "invalid"


def check_victim_kind(config: Mapping[str, Any], name: str) -> None:
    """Exactly one of ``train`` / ``misleader`` / ``quantize``; sources are trained victims of the
    same dataset; architectures are registered."""
    v = config["victims"][name]
    kinds = [k for k in VICTIM_KINDS if k in v]
    if len(kinds) != 1:
        raise ConfigError(
            f"config key victims.{name}: give exactly one of {', '.join(VICTIM_KINDS)} "
            f"(how the victim is made); found {kinds or 'none'}"
        )
    kind = kinds[0]
    if kind == "train":
        if "arch" not in v:
            raise ConfigError(f"config key victims.{name}.arch is required for a trained victim")
        _known("architecture", v["arch"], ARCHITECTURES, f"victims.{name}.arch")
        return
    source_key = "teacher" if kind == "misleader" else "source"
    source = v[kind][source_key]
    key = f"victims.{name}.{kind}.{source_key}"
    _known("victim", source, config["victims"], key)
    src = config["victims"][source]
    if victim_kind(src) != "train":
        raise ConfigError(
            f"config key {key}: {source!r} must be a trained victim (it has no 'train' section)"
        )
    if src["dataset"] != v["dataset"]:
        raise ConfigError(
            f"config key {key}: {source!r} is a {src['dataset']} victim, this one {v['dataset']}"
        )
    if kind == "quantize" and "arch" in v:
        raise ConfigError(
            f"config key victims.{name}.arch: a quantized victim has its source's architecture; remove the key"
        )
    if kind == "misleader" and v["dataset"] not in HALF_NORMALISED:
        raise ConfigError(
            f"config key victims.{name}.misleader: MISLEADER's attacker-like stream is defined for the 32×32 "
            f"datasets normalised with mean = std = 0.5 ({', '.join(HALF_NORMALISED)}), not {v['dataset']!r}"
        )
    try:
        if kind == "misleader":
            from .misleader import MemberRecipe, MemberSpec

            for i, m in enumerate(v["misleader"]["members"]):
                _known(
                    "architecture", m["arch"], ARCHITECTURES, f"victims.{name}.misleader.members[{i}].arch"
                )
                MemberSpec.from_config(m)
            MemberRecipe.from_config(v["misleader"]["train"])
        else:
            from .quantization import QuantRecipe

            QuantRecipe.from_config(v["quantize"])
    except ValueError as exc:
        raise ConfigError(f"config key victims.{name}.{kind}: {exc}") from None
    if "arch" in v:
        _known("architecture", v["arch"], ARCHITECTURES, f"victims.{name}.arch")


def victim_arch(config: Mapping[str, Any], name: str) -> str:
    """The architecture the defenses' auxiliary models (surrogates, misinformation model) of
    victim ``name`` use: its own, its fp32 source's (quantized), or its first member's (MISLEADER,
    unless ``arch`` is given)."""
    v = config["victims"][name]
    kind = victim_kind(v)
    if "arch" in v:
        return v["arch"]
    if kind == "quantize":
        return victim_arch(config, v["quantize"]["source"])
    return v["misleader"]["members"][0]["arch"]


def victims_of_kind(config: Mapping[str, Any], kind: str) -> list[str]:
    return [n for n, v in config["victims"].items() if victim_kind(v) == kind]


def brief(values: Sequence[Any], *, at_most: int = 8) -> str:
    """A list for a message: whole when short, else its first values and how many there are."""
    if len(values) <= at_most:
        return str(list(values))
    return f"[{', '.join(map(str, values[:at_most]))}, … ({len(values):,} values)]"


def victim_defenses(config: Mapping[str, Any], name: str) -> dict[str, list[float]]:
    """Defenses (and their parameters) put in front of victim ``name``: ``victims.<name>.defenses``
    if given (a subset of each sweep), else every defense with its whole sweep."""
    chosen = config["victims"][name].get("defenses")
    if chosen is None:
        return {d: list(map(float, c["params"])) for d, c in config["defenses"].items()}
    for d in chosen:
        _known("defense", d, config["defenses"], f"victims.{name}.defenses")
    return {d: list(map(float, ps)) for d, ps in chosen.items()}


def aux_owner(config: Mapping[str, Any], name: str) -> str:
    """The victim whose auxiliary models victim ``name`` uses: a quantized victim uses its fp32
    source's (GRAD / MAD use fp32 surrogates, as in the papers); every other victim its own."""
    v = config["victims"][name]
    return v["quantize"]["source"] if victim_kind(v) == "quantize" else name


def check_splits(config: Mapping[str, Any]) -> None:
    """attacker_holdout + validation_fraction < 1, and a validation part wherever a victim's
    dataset has no ``val`` split of its own (model selection needs one)."""
    from .data import get_dataset_spec

    holdout, val = config["data"]["attacker_holdout"], config["data"]["validation_fraction"]
    if holdout + val >= 1:
        raise ConfigError(
            f"config keys data.attacker_holdout ({holdout}) + data.validation_fraction ({val}) must be < 1"
        )
    if val <= 0:
        for name, v in config["victims"].items():
            if "val" not in get_dataset_spec(v["dataset"]).splits:
                raise ConfigError(
                    f"config key data.validation_fraction must be > 0: victim {name!r} ({v['dataset']}) has no "
                    f"validation split of its own, and clones / members are selected on one"
                )


def check_datafree(config: Mapping[str, Any]) -> None:
    """The ``datafree`` section: victims, student, attack presets and overrides, attacked ε."""
    from dataclasses import fields

    from .attacks import PRESETS, DataFreeConfig
    from .attacks.datafree_config import SCOPE_KEYS, SettingError
    from .attacks.datafree_config import from_config as datafree_from_config

    df = config.get("datafree")
    if not df:
        return
    for key, section in [("datafree", df), *((f"datafree.attacks.{n}", a) for n, a in df["attacks"].items())]:
        if "victims" in section and not section["victims"]:
            raise ConfigError(
                f"config key {key}.victims: an empty list; leave the key out to attack every victim "
                "(of datafree.victims, for an attack), or leave the datafree section out to run no data-free attack"
            )
    for v in df.get("victims") or config["victims"]:
        _known("victim", v, config["victims"], "datafree.victims")
        dataset = config["victims"][v]["dataset"]
        tanh_attacks = [n for n, a in df["attacks"].items() if a.get("input_range", "tanh") == "tanh"]
        if dataset not in HALF_NORMALISED and tanh_attacks:
            raise ConfigError(
                f"config key datafree.attacks.{tanh_attacks[0]}.input_range: victim {v!r} ({dataset}) is not "
                f"normalised with mean = std = 0.5, so tanh output is not its input range; set input_range: "
                f"tanh_to_unit_then_normalise with input_mean / input_std (and note the generators make 32×32 images)"
            )
    _known("architecture", df["student"], ARCHITECTURES, "datafree.student")
    for defense, params in df["params"].items():
        _known("defense", defense, config["defenses"], "datafree.params")
        sweep = {format_param(p) for p in config["defenses"][defense]["params"]}
        for p in params:
            if format_param(p) not in sweep:
                raise ConfigError(
                    f"config key datafree.params.{defense}: {p} is not in defenses.{defense}.params "
                    f"{brief(config['defenses'][defense]['params'])}; attack only swept values"
                )
    allowed = ({f.name for f in fields(DataFreeConfig)} - {"name", "seed"}) | set(SCOPE_KEYS)
    attacked = df.get("victims") or list(config["victims"])
    for name, attack in df["attacks"].items():
        _known("preset", attack["preset"], PRESETS, f"datafree.attacks.{name}.preset")
        for v in attack.get("victims") or []:
            if v not in attacked:
                raise ConfigError(
                    f"config key datafree.attacks.{name}.victims: {v!r} is not among the attacked "
                    f"victims {attacked} (datafree.victims)"
                )
        for defense, params in (attack.get("params") or {}).items():
            there = {format_param(p) for p in df["params"].get(defense, [])}
            missing = [p for p in params if format_param(p) not in there]
            if missing:
                raise ConfigError(
                    f"config key datafree.attacks.{name}.params.{defense}: {missing} not in "
                    f"datafree.params.{defense}; an attack's scope narrows datafree.params"
                )
        for key in attack:
            if key != "preset" and key not in allowed:
                raise ConfigError(
                    f"config key datafree.attacks.{name}.{key}: unknown attack setting; "
                    f"known: preset, {', '.join(sorted(allowed))}"
                )
        try:
            datafree_from_config(attack)
        except SettingError as exc:
            raise ConfigError(f"config key datafree.attacks.{name}.{exc.field}: {exc.problem}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"config key datafree.attacks.{name}: {exc}") from None


def datafree_runs(config: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """Every (attack, victim, defense, param text) DFME / MAZE run of the experiment; an attack's
    own ``victims`` / ``params`` narrow ``datafree.victims`` / ``datafree.params``."""
    df = config.get("datafree")
    if not df:
        return
    for attack, entry in df["attacks"].items():
        for victim in entry.get("victims") or df.get("victims") or config["victims"]:
            offered = victim_defenses(config, victim)
            for defense, params in (entry.get("params") or df["params"]).items():
                there = {format_param(p) for p in offered.get(defense, [])}
                for p in params:
                    if format_param(p) in there:
                        yield attack, victim, defense, format_param(p)


def knockoff_runs(config: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """Every (victim, transfer set, defense, param text) KnockoffNets run of the experiment."""
    for victim, v in config["victims"].items():
        for transfer in v["transfer_sets"]:
            for defense, params in victim_defenses(config, victim).items():
                for p in params:
                    yield victim, transfer, defense, format_param(p)


def datafree_transfer(config: Mapping[str, Any], victim: str) -> str:
    """Data-free attacks use no transfer set; the defense's surrogates and the defended test
    answers come from the victim's first transfer set."""
    return config["victims"][victim]["transfer_sets"][0]


def pretrained_arch(entry: Mapping[str, Any]) -> str | None:
    """The architecture whose ImageNet weights a victim entry or the ``knockoff`` section starts
    from (``pretrained: true``), else None."""
    return entry.get("arch") if entry.get("pretrained") else None


def aux_models_of(config: Mapping[str, Any], defense: str) -> tuple[str, ...]:
    """Auxiliary model names the defense ``defense`` of ``config`` needs."""
    return required_aux_models(config["defenses"][defense])
