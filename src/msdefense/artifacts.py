"""Every artifact a stage or a table reads, checked as it is read: one reader per kind.

- :func:`read_posteriors`: the ``.npz`` of ``answer_queries`` (its arrays, their shapes and
  dtypes, probability rows on the simplex, labels in range);
- :func:`read_victim` / :func:`read_classifier` / :func:`read_victim_info`: a model of the victim
  store (a readable safetensors file, the metadata :mod:`msdefense.victims` writes, finite
  weights that load into the model they describe); :func:`read_torchvision_weights`: the ImageNet
  weights of ``prepare_weights``;
- metrics JSON records: :mod:`msdefense.records` (it raises the same :class:`ArtifactError`).

Whatever is wrong raises :class:`ArtifactError` with the file, the problem, and the rule that
writes that kind of file (:data:`msdefense.layout.WRITERS`) with the command that reruns it.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import layout, provenance
from .io import load_arrays

PathLike = str | os.PathLike


class ArtifactError(ValueError):
    """An artifact that cannot be read or is not what the rule that writes it writes."""

    def __init__(self, path: PathLike, problem: str, rules: Sequence[str] = ()) -> None:
        self.path, self.problem, self.rules = str(path), problem, tuple(rules)
        super().__init__(f"{self.path}: {problem}. {_rerun(self.path, self.rules)}")

    def __reduce__(self) -> tuple[type, tuple[str, str, tuple[str, ...]]]:
        return type(self), (self.path, self.problem, self.rules)


def _rerun(path: str, rules: Sequence[str]) -> str:
    if len(rules) == 1:
        return (
            f"It is written by the rule {rules[0]}: rerun it with `snakemake --forcerun {rules[0]}` "
            f"(or only this file's job: `snakemake --forcerun {path}`)"
        )
    if rules:
        names = ", ".join(rules[:-1]) + f" or {rules[-1]}"
        return (
            f"It is written by the rule {names} (whichever makes it): rerun that rule with "
            f"`snakemake --forcerun <rule>`, or this file's job alone with `snakemake --forcerun {path}`"
        )
    return f"Rerun the job that writes it with `snakemake --forcerun {path}`"


def pattern_of(path: PathLike) -> str | None:
    """The :mod:`~msdefense.layout` pattern ``path`` is an instance of (None if it follows none)."""
    text = Path(path).as_posix()
    return next((p for p in layout.WRITERS if layout.pattern_regex(p).search(text)), None)


def writers(path: PathLike, pattern: str | None = None, victim_kind: str | None = None) -> tuple[str, ...]:
    """The rules that write ``path`` (an instance of ``pattern``, or of the pattern it matches);
    a victim's files by the victim's kind when it is known."""
    pattern = pattern or pattern_of(path)
    if pattern in (layout.VICTIM_MODEL, layout.VICTIM_METRICS) and victim_kind in layout.VICTIM_WRITERS:
        return (layout.VICTIM_WRITERS[victim_kind],)
    return layout.WRITERS.get(pattern, ()) if pattern else ()


def error_detail(exc: BaseException, path: PathLike) -> str:
    """An exception's message on one line, without a leading ``<path>: ``, cut to a readable length."""
    text = " ".join(str(exc).removeprefix(f"{path}: ").split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:400] + " …"


# ---------------------------------------------------------------------------------------------
# posteriors (answer_queries)

#: The arrays ``answer_queries`` writes (msdefense.stages.answers); E sweep values, N queries,
#: M test images, K classes.
POSTERIOR_SHAPES = {
    "params": "E",
    "param_texts": "E",
    "transfer": "ENK",
    "test": "EMK",
    "test_labels": "M",
    "victim_test_pred": "M",
    "l1_distance": "E",
    "defender_acc": "E",
    "queries": "",
}
#: How far a row may sum from 1 (as msdefense.defenses.base.check_probabilities allows).
ROW_SUM_ATOL = 1e-3
_FLOATING = ("params", "transfer", "test", "l1_distance", "defender_acc")
_INTEGER = ("test_labels", "victim_test_pred", "queries")


def read_posteriors(path: PathLike, params: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """The arrays of a posteriors file, checked; ``params``: sweep texts it must hold answers for."""
    rules = writers(path, layout.POSTERIORS)

    def bad(problem: str) -> ArtifactError:
        return ArtifactError(path, problem, rules)

    try:
        arrays = load_arrays(path)
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise bad(f"is not a readable .npz file ({type(exc).__name__}: {error_detail(exc, path)})") from exc
    missing = [k for k in POSTERIOR_SHAPES if k not in arrays]
    if missing:
        raise bad(f"lacks the arrays {missing} (it holds {sorted(arrays)})")
    recorded = arrays.pop(provenance.KEY, None)
    _check_posteriors(arrays, bad)
    texts = arrays["param_texts"].tolist()
    absent = [p for p in params if p not in texts]
    if absent:
        raise bad(f"has no answers for the sweep values {absent}; it holds {texts}")
    wrong = provenance.mismatch(None if recorded is None else str(recorded), path)
    if wrong:
        raise bad(wrong)
    return arrays


def sweep_index(answers: Mapping[str, np.ndarray], param: str, source: PathLike) -> int:
    """Where the sweep value ``param`` (its canonical text) sits in the arrays of ``source``."""
    texts = answers["param_texts"].tolist()
    if param not in texts:
        raise ArtifactError(
            source,
            f"has no answers for the sweep value {param!r}; it holds {texts}",
            writers(source, layout.POSTERIORS),
        )
    return texts.index(param)


def _check_posteriors(a: Mapping[str, np.ndarray], bad: Callable[[str], ArtifactError]) -> None:
    for name in ("transfer", "test"):
        if a[name].ndim != 3:
            raise bad(f"{name!r} has shape {a[name].shape}, not [sweep values, images, classes]")
    (e, n, k), m = a["transfer"].shape, a["test"].shape[1]
    sizes = {"E": e, "N": n, "M": m, "K": k}
    wrong = [
        f"{key!r} {a[key].shape} where {tuple(sizes[d] for d in dims)} is expected"
        for key, dims in POSTERIOR_SHAPES.items()
        if a[key].shape != tuple(sizes[d] for d in dims)
    ]
    if wrong:
        raise bad(
            f"has arrays of inconsistent shapes (E={e} sweep values, N={n} queries, K={k} classes, "
            f"M={m} test images): " + "; ".join(wrong)
        )
    if min(e, n, m) == 0 or k < 2:
        raise bad(f"is empty: {e} sweep values, {n} queries, {m} test images, {k} classes")
    for key in _FLOATING:
        if not np.issubdtype(a[key].dtype, np.floating):
            raise bad(f"{key!r} has dtype {a[key].dtype}, not a floating-point dtype")
    for key in _INTEGER:
        if not np.issubdtype(a[key].dtype, np.integer):
            raise bad(f"{key!r} has dtype {a[key].dtype}, not an integer dtype")
    if a["param_texts"].dtype.kind != "U":
        raise bad(f"'param_texts' has dtype {a['param_texts'].dtype}, not strings")
    texts = a["param_texts"].tolist()
    if len(set(texts)) != len(texts):
        raise bad(f"repeats a sweep value in 'param_texts' {texts}")
    for name in ("transfer", "test"):
        _check_simplex(a[name], name, texts, bad)
    for key in ("test_labels", "victim_test_pred"):
        lo, hi = int(a[key].min()), int(a[key].max())
        if lo < 0 or hi >= k:
            raise bad(f"{key!r} holds classes outside [0, {k}) (from {lo} to {hi})")
    if not np.isfinite(a["params"]).all():
        raise bad(f"'params' holds non-finite sweep values {a['params'].tolist()}")
    _check_range(a["l1_distance"], "l1_distance", 0.0, 2.0, bad)
    _check_range(a["defender_acc"], "defender_acc", 0.0, 1.0, bad)
    if int(a["queries"]) != n:
        raise bad(f"'queries' is {int(a['queries'])}, but 'transfer' answers {n} queries")


def _check_range(x: np.ndarray, name: str, lo: float, hi: float, bad: Callable[[str], ArtifactError]) -> None:
    inside = (x >= lo) & (x <= hi)  # NaN is outside
    if not inside.all():
        raise bad(f"{name!r} holds values outside [{lo:g}, {hi:g}]: {x[~inside][:5].tolist()}")


def _check_simplex(x: np.ndarray, name: str, texts: list[str], bad: Callable[[str], ArtifactError]) -> None:
    """Every row of ``x`` [E, rows, K] finite, non-negative and summing to 1 (one sweep value at a time)."""
    for e, block in enumerate(x):
        where = f"{name!r} at sweep value {texts[e]}"
        sums = block.sum(-1, dtype=np.float64)  # a NaN or an infinity makes its row's sum non-finite
        finite = np.isfinite(sums)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise bad(
                f"{where}: {len(rows)} of {len(sums)} rows hold NaN or infinite values "
                f"(first: row {rows[0]}); posteriors must be probabilities"
            )
        low = float(block.min())
        if low < 0:
            rows = np.flatnonzero((block < 0).any(-1))
            raise bad(
                f"{where}: {len(rows)} of {len(sums)} rows hold negative probabilities "
                f"(min {low:.3g}, first: row {rows[0]})"
            )
        off = np.abs(sums - 1) > ROW_SUM_ATOL
        if off.any():
            rows = np.flatnonzero(off)
            raise bad(
                f"{where}: {len(rows)} of {len(sums)} rows do not sum to 1 (row {rows[0]} sums to "
                f"{sums[rows[0]]:.6g}; tolerance {ROW_SUM_ATOL:g})"
            )
