"""Where an artifact belongs, written into it and checked when it is read.

Every weights, answers and metrics file the workflow writes under an experiment's results folder
records its provenance: the experiment, the rule that writes it and the wildcards of its path
(seed, victim, transfer set, defense, attack, sweep value, member …), all read off the path it
is written to (:func:`of_path`). :mod:`msdefense.io` writes it (safetensors metadata, an array
of the ``.npz``, a key of each JSON record); the readers compare it with the path they were asked
to read (:func:`mismatch`), so a valid file of another run (seed 4's weights copied over seed 3's,
a symlink to another victim's answers, one MISLEADER member copied over another) is refused
naming both, instead of being used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import layout

#: the key of the provenance in a safetensors header, an ``.npz`` and a JSON record
KEY = "provenance"
#: patterns outside an experiment's results folder (under the config's data root): not stamped
_OUTSIDE = (layout.WEIGHTS_FILE, layout.DATASET_FLAG)


def of_path(path: str | os.PathLike) -> dict[str, str] | None:
    """The provenance an artifact at ``path`` must record: the experiment (the folder above the
    pattern's part of the path), the rule(s) that write it and its wildcards; None for a path that
    follows no artifact pattern. The path is taken as given (a symlink is not followed)."""
    text = Path(path).as_posix()
    for pattern, rules in layout.WRITERS.items():
        if pattern in _OUTSIDE:
            continue
        match = layout.pattern_regex(pattern).search(text)
        if match:
            before = text[: match.start()].rstrip("/")
            return {
                "experiment": before.rsplit("/", 1)[-1] if before else "",
                "rule": " or ".join(rules),
                **match.groupdict(),
            }
    return None


def _shown(prov: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v!r}" for k, v in sorted(prov.items()) if k != "rule")


def mismatch(recorded: Any, path: str | os.PathLike) -> str | None:
    """Why a file at ``path`` that records ``recorded`` (a mapping or its JSON text) does not belong
    there, or None when it does. A file without a provenance belongs nowhere: it was written by
    hand or by a version of the package that did not record one. Paths outside the layout pass."""
    expected = of_path(path)
    if expected is None:
        return None
    if recorded is None:
        return "records no provenance (it was not written by this version of the workflow's rule)"
    if isinstance(recorded, str | bytes):
        try:
            recorded = json.loads(recorded)
        except ValueError:
            return f"records an unreadable provenance {str(recorded)[:80]!r}"
    if not isinstance(recorded, Mapping):
        return f"records a provenance that is not a mapping ({type(recorded).__name__})"
    wrong = {k: v for k, v in expected.items() if k != "rule" and str(recorded.get(k)) != v}
    if not wrong:
        return None
    theirs = {k: recorded.get(k) for k in wrong}
    return (
        f"belongs to {_shown(theirs)} (it records that provenance), but it was read as the file of "
        f"{_shown(wrong)}; it is another run's file (copied or linked here)"
    )


def fields_mismatch(record: Mapping[str, Any], path: str | os.PathLike) -> str | None:
    """Why a metrics record's own fields (``victim``, ``seed``, ``defense`` …) contradict the
    wildcards of the path it was read from, or None."""
    expected = of_path(path) or {}
    wrong = [
        f"{k} {record[k]!r} where its path says {v!r}"
        for k, v in expected.items()
        if k not in ("experiment", "rule") and k in record and str(record[k]) != v
    ]
    return f"a record names {', '.join(wrong)}" if wrong else None
