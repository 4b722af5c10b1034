"""Metrics records (JSON), checked as they are read: :func:`read_record` / :func:`read_records`
check each record against the schema of its kind (:data:`RECORDS`: required keys, types,
ranges), and the records of a table's inputs are unique per setting. A failure raises
:class:`msdefense.artifacts.ArtifactError` naming the file and the rule that writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout, provenance
from .artifacts import ArtifactError, PathLike, error_detail, writers
from .record_types import (
    FLAG,
    NONNEGATIVE,
    NUMBER,
    POSITIVE,
    TEXT,
    Check,
    DataFreeRecord,
    EnsembleRecord,
    KnockoffRecord,
    QuantizedVictimRecord,
    VictimRecord,
    field_checks,
)


@dataclass(frozen=True)
class RecordSchema:
    """A kind of metrics record: the file pattern (its rule), whether a file holds a list of records
    or one, the checks of its fields (applied wherever a field is present), the keys every record
    must have, and the keys that identify a setting in a table (unique among its inputs)."""

    what: str
    pattern: str
    many: bool
    fields: Mapping[str, Check]
    required: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    victim_kind: str | None = None
    #: field -> the field it may not exceed (where both are present)
    at_most: Mapping[str, str] = field(default_factory=dict)

    def rules(self, path: PathLike) -> tuple[str, ...]:
        return writers(path, self.pattern, self.victim_kind)


#: the fields every attack record must hold (msdefense.record_types.AttackRecord)
_ATTACK_REQUIRED = (
    "victim",
    "defense",
    "method",
    "param",
    "defender_acc",
    "clone_acc",
    "fidelity",
    "clone_acc_final",
    "fidelity_final",
    "queries",
    "seed",
)

#: what a KnockoffNets clone's record holds, whichever rule wrote it
_KNOCKOFF: dict[str, Any] = {
    "many": True,
    "fields": field_checks(KnockoffRecord),
    "required": (*_ATTACK_REQUIRED, "transfer", "labels", "l1_distance"),
}

#: Every kind of metrics record a stage or a table reads.
RECORDS: dict[str, RecordSchema] = {
    "knockoff": RecordSchema(
        "KnockoffNets metrics",
        layout.KNOCKOFF_METRICS,
        unique=("victim", "transfer", "labels", "defense", "param", "seed"),
        **_KNOCKOFF,
    ),
    # the budget clones (train_knockoff_budgets): one record per budget, value and seed
    "knockoff_budget": RecordSchema(
        "KnockoffNets budget-curve metrics",
        layout.KNOCKOFF_BUDGETS,
        unique=("victim", "transfer", "labels", "defense", "param", "queries", "seed"),
        **_KNOCKOFF,
    ),
    "datafree": RecordSchema(
        "data-free attack metrics",
        layout.DATAFREE_METRICS,
        many=False,
        fields=field_checks(DataFreeRecord),
        required=(*_ATTACK_REQUIRED, "attack", "oracle_view", "preset", "best_val_acc"),
        unique=("attack", "oracle_view", "victim", "defense", "param", "seed"),
        at_most={"queries": "query_budget", "oracle_queries": "query_budget"},
    ),
    "victim": RecordSchema(
        "victim metrics",
        layout.VICTIM_METRICS,
        many=False,
        fields=field_checks(VictimRecord),
        victim_kind="fp32",
    ),
    "quantized_victim": RecordSchema(
        "int8 victim metrics",
        layout.VICTIM_METRICS,
        many=False,
        fields=field_checks(QuantizedVictimRecord),
        required=(
            "victim",
            "source",
            "precision",
            "backend",
            "mode",
            "test_acc",
            "source_test_acc",
            "size_mb",
            "source_size_mb",
            "seed",
        ),
        unique=("victim", "seed"),
        victim_kind="int8",
    ),
    "ensemble": RecordSchema(
        "MISLEADER ensemble metrics",
        layout.VICTIM_METRICS,
        many=False,
        fields=field_checks(EnsembleRecord),
        required=("victim", "teacher", "dataset", "seed"),
        unique=("victim", "seed"),
        victim_kind="ensemble",
    ),
    "latency": RecordSchema(
        "latency measurements",
        layout.LATENCY,
        many=True,
        fields={
            "victim": TEXT,
            "defense": TEXT,
            "method": TEXT,
            "arch": TEXT,
            "param": NUMBER,
            "batch_size": POSITIVE,
            "ms_per_query": NONNEGATIVE,
            "ms_undefended": NONNEGATIVE,
            "ms_per_query_iqr": NONNEGATIVE,
            "overhead_vs_none": NONNEGATIVE,
            "overhead_ci_low": NONNEGATIVE,
            "overhead_ci_high": NONNEGATIVE,
            "repeats": POSITIVE,
            "reliable": FLAG,
        },
        required=("victim", "method", "batch_size", "ms_per_query"),
    ),
}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object (JSON keeps the last silently)")
        seen[key] = value
    return seen


def _load_json(path: PathLike, rules: Sequence[str]) -> Any:
    try:
        return json.loads(Path(path).read_bytes(), object_pairs_hook=_unique_keys)
    except OSError as exc:
        raise ArtifactError(path, f"cannot be read ({error_detail(exc, path)})", rules) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ArtifactError(path, f"is not valid JSON ({error_detail(exc, path)})", rules) from exc


def _file_records(path: PathLike, schema: RecordSchema, required: Sequence[str]) -> list[dict[str, Any]]:
    rules = schema.rules(path)
    data = _load_json(path, rules)
    if schema.many:
        if not isinstance(data, list) or not data:
            got = "an empty list" if data == [] else f"a JSON {type(data).__name__}"
            raise ArtifactError(path, f"holds {got}, not a list of {schema.what} records", rules)
        records = data
    elif isinstance(data, dict):
        records = [data]
    else:
        raise ArtifactError(path, f"holds a JSON {type(data).__name__}, not a {schema.what} record", rules)
    for i, record in enumerate(records):
        where = f"record {i}" if schema.many else "the record"
        if not isinstance(record, dict):
            raise ArtifactError(path, f"{where} is a JSON {type(record).__name__}, not an object", rules)
        recorded = record.pop(provenance.KEY, None)
        missing = [k for k in required if k not in record]
        if missing:
            raise ArtifactError(path, f"{where} lacks the keys {missing} of {schema.what}", rules)
        for key, check in schema.fields.items():
            if key in record and not check.ok(record[key]):
                raise ArtifactError(
                    path, f"{where}: {key!r} is {record[key]!r}, expected {check.expect}", rules
                )
        over = [f"{k} {record[k]!r} exceeds {b} {record[b]!r}" for k, b in schema.at_most.items()
                if NUMBER.ok(record.get(k)) and NUMBER.ok(record.get(b)) and record[k] > record[b]]  # fmt: skip
        if over:
            raise ArtifactError(path, f"{where}: {'; '.join(over)}", rules)
        wrong = provenance.mismatch(recorded, path) or provenance.fields_mismatch(record, path)
        if wrong:
            raise ArtifactError(path, f"{where}: {wrong}" if schema.many else wrong, rules)
    return records


def read_record(path: PathLike, kind: str, require: Sequence[str] = ()) -> dict[str, Any]:
    """The one record of a metrics file of ``kind`` (:data:`RECORDS`), checked; ``require``: keys
    the caller needs beyond the kind's required ones."""
    schema = RECORDS[kind]
    if schema.many:
        raise ValueError(f"a {schema.what} file holds a list of records: use read_records")
    return _file_records(path, schema, (*schema.required, *require))[0]


def read_records(
    paths: Iterable[PathLike],
    kind: str,
    require: Sequence[str] = (),
    unique: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Every record of the metrics files ``paths`` of ``kind`` (:data:`RECORDS`), in order, checked.

    ``require``: keys the caller needs beyond the kind's; ``unique``: the keys of which no two
    records may share the values (default: the kind's), so that no setting is counted twice.
    """
    schema = RECORDS[kind]
    key_fields = tuple(schema.unique if unique is None else unique)
    needed = tuple(dict.fromkeys((*schema.required, *require, *key_fields)))
    first: dict[tuple, str] = {}  # a setting's key -> the file of its first record
    rows: list[dict[str, Any]] = []
    for path in paths:
        records = _file_records(path, schema, needed)
        for i, record in enumerate(records):
            if not key_fields:
                continue
            key = tuple(record[k] for k in key_fields)
            if key in first:
                setting = ", ".join(f"{k}={v!r}" for k, v in zip(key_fields, key, strict=True))
                where = f"record {i}" if schema.many else "its record"
                raise ArtifactError(
                    path,
                    f"{where} repeats the setting ({setting}) of a record in {first[key]}: a table "
                    "counts every setting once",
                    schema.rules(path),
                )
            first[key] = str(path)
        rows.extend(records)
    return rows
