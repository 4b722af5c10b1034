"""Every check a config passes before the workflow plans a job, in the order the Snakefile runs them.

1. the config files themselves: a key given twice in one mapping, or a YTE template
   (``__use_yte__``), is an error naming the file, the key and the line (:func:`check_config_files`);
2. keys that were renamed or moved (:func:`msdefense.config.check_renamed_keys`);
3. every name that becomes part of a path matches :data:`NAME_PATTERN` (:func:`check_names`);
4. every number is finite (:func:`check_finite`): JSON-schema ``minimum`` lets NaN through;
5. the JSON schema (types, ranges, defaults); a whole number where the schema asks for an
   integer (``32.0`` and ``2.0e+5`` are refused naming the key: :func:`check_integers`), then the
   registries and cross-references (:func:`msdefense.config.check_config`);
6. the size of the plan (:func:`msdefense.plan.check_plan_bounds`): jobs, clones per job and
   data-free iterations above the bounds are refused unless ``allow_large_plan`` is true.

:func:`preflight` runs them all; a failure is a :class:`~msdefense.config.ConfigError` naming
the key (or file and line) and what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, check_config, check_renamed_keys

#: A name used in a path (experiment, victim, transfer set, defense, attack, reference victim):
#: a letter or digit first (no ``..``, no hidden files), then letters, digits, ``_ . -``; 64 at most.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: The same, as a Snakemake wildcard constraint (anchored by Snakemake)
NAME_WILDCARD = NAME_PATTERN[1:-1]
_NAME = re.compile(NAME_PATTERN)
#: Mappings whose keys are names used in paths (dotted paths into the config)
NAMED_SECTIONS = ("victims", "transfer_sets", "defenses", "datafree.attacks", "latency.reference_victims")
YTE_KEY = "__use_yte__"


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:  # the literal keys, before merges (<<: *anchor) are flattened in
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(
                f"config file {loader.name}: key {key!r} appears twice in one mapping (lines {seen[key]} and "
                f"{line}); YAML would silently keep the second: remove one"
            )
        seen[key] = line
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config_file(path: str | Path) -> Any:
    """The YAML of a config file, refusing duplicate keys and YTE templates (with file and line)."""
    path = Path(path)
    text = path.read_text()
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if isinstance(data, Mapping) and YTE_KEY in data:
        raise ConfigError(
            f"config file {path}: {YTE_KEY} makes Snakemake evaluate the file's YTE expressions (Python code) "
            f"while it loads it; msdefense configs are plain YAML: render the template to a plain file first. "
            f"A config file is code to Snakemake: run only config files you trust (README, 'Config files')"
        )
    return data


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Every config file Snakemake loaded, read again strictly (:func:`load_config_file`)."""
    for path in paths:
        load_config_file(path)


def _section(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


#: File suffixes of the workflow's artifacts: a name ending in one (a transfer set called
#: ``misinformation.safetensors``) makes a folder of the same path as another rule's file.
ARTIFACT_SUFFIXES = (".safetensors", ".json", ".npz", ".csv", ".tsv", ".md", ".log", ".png", ".pdf", ".pth")


#: Snakemake refuses a wildcard value that ends in one unit repeated 20 times or more ("aaa…",
#: "abab…"): it takes it for an infinite recursion (PeriodicWildcardError, snakemake.io).
PERIODIC_REPEATS = 20
_PERIODIC = re.compile(rf"((?P<unit>.+?)(?P=unit){{{PERIODIC_REPEATS - 1},}})$")


def check_name(name: object, key: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` matches :data:`NAME_PATTERN`, does not end in
    one of :data:`ARTIFACT_SUFFIXES` and does not end in a unit repeated :data:`PERIODIC_REPEATS`
    times (which Snakemake refuses as a wildcard value)."""
    if not isinstance(name, str) or not _NAME.match(name):
        shown = repr(name) if len(repr(name)) <= 80 else f"{repr(name)[:60]}… ({len(str(name))} characters)"
        raise ConfigError(
            f"config key {key}: {shown} is not a usable name; a name is part of file paths: a letter or digit "
            f"first, then letters, digits, '_', '.', '-', 64 characters at most ({NAME_PATTERN})"
        )
    if name.lower().endswith(ARTIFACT_SUFFIXES):
        raise ConfigError(
            f"config key {key}: {name!r} ends like one of the workflow's file names "
            f"({', '.join(ARTIFACT_SUFFIXES)}), so its folder could collide with a file; rename it"
        )
    periodic = _PERIODIC.search(name)
    if periodic:
        raise ConfigError(
            f"config key {key}: {name!r} ends in {periodic.group('unit')!r} repeated "
            f"{len(periodic.group(1)) // len(periodic.group('unit'))} times, which Snakemake refuses in a "
            f"file name (it takes it for an endless recursion); rename it"
        )


def check_names(config: Mapping[str, Any]) -> None:
    """The experiment's name and every key of :data:`NAMED_SECTIONS` match :data:`NAME_PATTERN`."""
    if "experiment" in config:
        check_name(config["experiment"], "experiment")
    for dotted in NAMED_SECTIONS:
        section = _section(config, dotted)
        if isinstance(section, Mapping):
            for name in section:
                check_name(name, f"{dotted}.{name}" if isinstance(name, str) else dotted)


def _numbers(node: Any, key: str) -> Iterator[tuple[str, float]]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _numbers(v, f"{key}[{i}]")
    elif isinstance(node, float):
        yield key, node


def check_finite(config: Mapping[str, Any]) -> None:
    """Every number in the config is finite (the schema's ranges do not reject NaN)."""
    for key, value in _numbers(config, ""):
        if not math.isfinite(value):
            raise ConfigError(f"config key {key}: {value} is not a finite number; give a number")


#: Top-level switches a user may give on the command line (``--config rerun_on_code_change=false``,
#: which Snakemake passes on as the string ``"false"``), and the spellings each side accepts.
FLAGS = ("rerun_on_code_change", "allow_large_plan")
_SPELLINGS = {True: ("true", "yes", "on", "1"), False: ("false", "no", "off", "0")}


def normalise_flags(config: MutableMapping[str, Any]) -> None:
    """Turn a switch of :data:`FLAGS` given as text (``false``, ``No``, ``0``, ``off`` …) into a
    boolean, in place; any other text is refused naming the key and the accepted spellings."""
    for key in FLAGS:
        value = config.get(key)
        if not isinstance(value, str):
            continue
        for flag, spellings in _SPELLINGS.items():
            if value.strip().lower() in spellings:
                config[key] = flag
                break
        else:
            accepted = ", ".join(s for spellings in _SPELLINGS.values() for s in spellings)
            raise ConfigError(f"config key {key}: {value!r} is not a switch; give one of {accepted}")


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while isinstance(schema, Mapping) and "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _integer_only(schema: Mapping[str, Any]) -> bool:
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    return "integer" in types and "number" not in types


def _check_integers(node: Any, schema: Any, key: str, root: Mapping[str, Any]) -> None:
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping):
        return
    if _integer_only(schema) and isinstance(node, float):
        hint = f" (write {int(node)})" if math.isfinite(node) and node.is_integer() else ""
        raise ConfigError(f"config key {key}: must be a whole number, got {node!r}{hint}")
    if isinstance(node, Mapping):
        for k, value in node.items():
            child = (schema.get("properties") or {}).get(k)
            if child is None:
                patterns = schema.get("patternProperties") or {}
                child = next((sub for pat, sub in patterns.items() if re.search(pat, str(k))), None)
            if child is None and isinstance(schema.get("additionalProperties"), Mapping):
                child = schema["additionalProperties"]
            if child is not None:
                _check_integers(value, child, f"{key}.{k}" if key else str(k), root)
    elif isinstance(node, list) and isinstance(schema.get("items"), Mapping):
        for i, value in enumerate(node):
            _check_integers(value, schema["items"], f"{key}[{i}]", root)


def check_integers(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """A number where the JSON schema asks for an integer is a whole number written as one: JSON
    schema counts ``32.0`` as an integer, and the stages would fail on it late (``range(32.0)``)."""
    _check_integers(config, schema, "", schema)


def preflight(
    config: Mapping[str, Any],
    *,
    validate: Callable[[Mapping[str, Any]], None],
    files: Iterable[str | Path] = (),
    schema: str | Path | None = None,
) -> None:
    """All checks of a config before any job (the module docstring's order); ``validate`` applies
    the JSON schema (Snakemake's ``validate`` with ``config/schema.yaml``, the file ``schema``)
    and fills defaults."""
    from .plan import check_plan_bounds

    check_config_files(files)
    if isinstance(config, MutableMapping):
        normalise_flags(config)
    check_renamed_keys(config)
    check_names(config)
    check_finite(config)
    validate(config)
    if schema is not None:
        check_integers(config, yaml.safe_load(Path(schema).read_text(encoding="utf-8")))
    check_config(config)
    check_plan_bounds(config)
    if isinstance(config, MutableMapping) and config.get("rehearsal") is not None:
        from .rehearsal import rehearse

        rehearse(config)  # the checked config shrunk to minutes (msdefense.rehearsal), checked again
        check_config(config)


def load_checked(path: str | Path, schema: str | Path) -> dict[str, Any]:
    """A config file read and checked as the Snakefile does (defaults filled in), outside Snakemake."""
    from snakemake.utils import validate

    config = load_config_file(path)
    if not isinstance(config, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping of config keys, got {type(config).__name__}"
        )
    preflight(config, validate=lambda c: validate(c, str(schema)), schema=schema)
    return config
