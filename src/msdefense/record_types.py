"""The metrics records the tables read, one dataclass per kind: the one statement of their fields.

A stage builds its record as one of these (a field it does not declare is a ``TypeError``), and
:mod:`msdefense.records` reads the file back with the checks declared here (``check`` in each
field's metadata; a field without a default is required), so the writer and the reader cannot
drift apart. The latency rows, measured by :mod:`msdefense.latency`, are declared in
:mod:`msdefense.records`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number_text(v: Any) -> bool:
    try:
        return isinstance(v, str) and math.isfinite(float(v))
    except ValueError:
        return False


@dataclass(frozen=True)
class Check:
    """What a field of a record must be: ``ok`` on its value, described by ``expect``."""

    expect: str
    ok: Callable[[Any], bool]


def between(lo: float, hi: float, *, nan: bool = False) -> Check:
    expect = f"a finite number in [{lo:g}, {hi:g}]" + (" or NaN" if nan else "")
    return Check(expect, lambda v: _is_number(v) and (lo <= v <= hi or (nan and math.isnan(v))))


def one_of(*values: str) -> Check:
    return Check(f"one of {list(values)}", lambda v: v in values)


def or_null(check: Check) -> Check:
    return Check(f"null or {check.expect}", lambda v: v is None or check.ok(v))


TEXT = Check("a non-empty string", lambda v: isinstance(v, str) and bool(v))
NUMBER_TEXT = Check("a number written as a string (e.g. '0.5')", _is_number_text)
NUMBER = Check("a finite number", lambda v: _is_number(v) and math.isfinite(v))
NONNEGATIVE = Check("a finite number >= 0", lambda v: _is_number(v) and 0 <= v < math.inf)
FRACTION = between(0, 1)
FRACTION_OR_NAN = between(0, 1, nan=True)
FRACTION_OR_NULL = or_null(FRACTION)
FRACTIONS = Check(
    "a list of finite numbers in [0, 1]", lambda v: isinstance(v, list) and all(map(FRACTION.ok, v))
)
COUNT = Check("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE = Check("an integer >= 1", lambda v: _is_int(v) and v >= 1)
SEED = Check("an integer", _is_int)
FLAG = Check("true or false", lambda v: isinstance(v, bool))
MAPPING = Check("a JSON object", lambda v: isinstance(v, dict))
TEXTS = Check("a list of non-empty strings", lambda v: isinstance(v, list) and all(map(TEXT.ok, v)))
#: why a clone's training stopped (msdefense.schedules.STOP_REASONS)
STOP_REASON = one_of("plateau", "cap", "schedule")


def checked(check: Check, **kwargs: Any) -> Any:
    """A dataclass field whose value the reader checks with ``check``."""
    return field(metadata={"check": check}, **kwargs)


class Record:
    """A metrics record: :meth:`fields` gives what its JSON file holds (with the stage's clock,
    :meth:`msdefense.stages.context.StageContext.record`)."""

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class AttackRecord(Record):
    """What every attack's record holds: the setting, the clone's scores on the test split (best
    on validation and final), the queries it spent and its random streams."""

    victim: str = checked(TEXT)
    defense: str = checked(TEXT)
    method: str = checked(TEXT)
    param: str = checked(NUMBER_TEXT)
    defender_acc: float = checked(FRACTION)
    clone_acc: float = checked(FRACTION)
    fidelity: float = checked(FRACTION)
    clone_acc_final: float = checked(FRACTION)
    fidelity_final: float = checked(FRACTION)
    best_val_acc: float = checked(FRACTION_OR_NAN)
    queries: int = checked(COUNT)
    test_images: int = checked(POSITIVE)
    seed: int = checked(SEED)
    stream_seed: int = checked(SEED)


@dataclass(frozen=True, kw_only=True)
class KnockoffRecord(AttackRecord):
    """One KnockoffNets clone of a sweep (``train_knockoff``): one per label kind and sweep value."""

    transfer: str = checked(TEXT)
    labels: str = checked(TEXT)
    l1_distance: float = checked(between(0, 2))
    agreement_defended: float = checked(FRACTION)
    best_epoch: int = checked(COUNT)
    clone_arch: str = checked(TEXT)
    epochs: int = checked(POSITIVE)
    patience: int | None = checked(or_null(POSITIVE))
    epochs_run: int = checked(COUNT)
    stop_reason: str = checked(STOP_REASON)
    val_curve: list[float] = checked(FRACTIONS)
    clone_seconds: float = checked(NONNEGATIVE)
    #: the defense-aware attacker's restorer (``labels: restored``) on its held-out shadow pairs:
    #: mean L1 distance to the clean posterior of the defended and of the restored answers
    restorer_l1_defended: float | None = checked(or_null(between(0, 2)), default=None)
    restorer_l1_restored: float | None = checked(or_null(between(0, 2)), default=None)
    #: the Adam steps the restorer took (it stops on its held-out plateau: ``restorer_patience``)
    restorer_steps: int | None = checked(or_null(COUNT), default=None)


@dataclass(frozen=True, kw_only=True)
class DataFreeRecord(AttackRecord):
    """One DFME or MAZE run (``run_datafree``)."""

    attack: str = checked(TEXT)
    preset: str = checked(TEXT)
    oracle_view: str = checked(TEXT)
    best_iteration: int = checked(COUNT)
    iterations: int = checked(COUNT)
    oracle_queries: int = checked(COUNT)
    query_budget: int = checked(POSITIVE)
    cost_per_iteration: int = checked(POSITIVE)
    student_arch: str = checked(TEXT)
    config: Mapping[str, Any] = checked(MAPPING)


@dataclass(frozen=True, kw_only=True)
class ModelRecord(Record):
    """What every victim's record holds: which model, its test accuracy, its replicate seed."""

    victim: str = checked(TEXT)
    dataset: str = checked(TEXT)
    arch: str = checked(TEXT)
    test_acc: float = checked(FRACTION)
    seed: int = checked(SEED)


@dataclass(frozen=True, kw_only=True)
class VictimRecord(ModelRecord):
    """A trained fp32 victim (``train_victim``)."""

    val_acc: float | None = checked(FRACTION_OR_NULL)
    train_size: int = checked(POSITIVE)
    stream_seed: int = checked(SEED)


@dataclass(frozen=True, kw_only=True)
class QuantizedVictimRecord(ModelRecord):
    """An int8 copy of an fp32 victim (``quantize_victim``)."""

    source: str = checked(TEXT)
    precision: str = checked(one_of("int8"))
    mode: str = checked(TEXT)
    backend: str = checked(TEXT)
    source_test_acc: float = checked(FRACTION)
    agreement_with_source: float = checked(FRACTION)
    size_mb: float = checked(NONNEGATIVE)
    source_size_mb: float = checked(NONNEGATIVE)
    qat_weight_max_abs_change: float | None = checked(or_null(NONNEGATIVE))
    stream_seed: int = checked(SEED)


@dataclass(frozen=True, kw_only=True)
class EnsembleRecord(ModelRecord):
    """A MISLEADER ensemble (``build_ensemble``)."""

    kind: str = checked(one_of("misleader"))
    members: list[str] = checked(TEXTS)
    member_test_acc: list[float] = checked(FRACTIONS)
    teacher: str = checked(TEXT)
    teacher_test_acc: float = checked(FRACTION)


def field_checks(kind: type) -> dict[str, Check]:
    """Every field of the record class ``kind`` and its check."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(kind)}
