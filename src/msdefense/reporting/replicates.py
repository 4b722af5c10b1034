"""Replicates: one table row per setting from the per-seed rows, with the mean over seeds, the
number of seeds and a 95% t-interval (docs/statistics.md).

The interval is Student's t over the seeds' values, ``mean ± t(0.975, n − 1) · s / √n``: it
covers what changes between replicates (training, defender models, randomised answers, the
attack), not the sampling error of the fixed test set. With one seed it is blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

CI_LEVEL = 0.95
#: The metrics every table gives an interval for (where the table has them).
INTERVAL_METRICS = ("clone_acc", "defender_acc", "fidelity", "l1_distance")


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval of ``values``; NaN bounds for fewer than two
    values; all NaN if any value is NaN (a seed that did not reach a point is not averaged away)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or not np.isfinite(v).all():
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + CI_LEVEL / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def _common(values: pd.Series) -> object:
    """A non-numeric column over the seeds: its value when every seed agrees, else the distinct
    values joined with ``|``."""
    distinct = list(dict.fromkeys(values.astype(str)))
    return values.iloc[0] if len(distinct) == 1 else "|".join(distinct)


def summarise(
    per_seed: pd.DataFrame,
    keys: Sequence[str],
    *,
    metrics: Sequence[str] = INTERVAL_METRICS,
) -> pd.DataFrame:
    """One row per distinct ``keys`` of ``per_seed`` (which has a ``seed`` column), in the order of
    first appearance, with the columns of ``per_seed`` in their order: ``seed`` becomes
    ``n_seeds``, keys and other non-numeric columns stay (values the seeds disagree on are joined
    with ``|``), numeric ones become their mean over seeds, each of ``metrics`` followed by
    ``<metric>_ci_low`` / ``<metric>_ci_high``. Refuses a setting that has the same seed twice."""
    keys = list(keys)
    dup = per_seed.duplicated([*keys, "seed"])
    if dup.any():
        first = per_seed.loc[dup, [*keys, "seed"]].iloc[0].to_dict()
        raise ValueError(f"two records for the same setting and seed: {first}")
    rows = []
    for _, part in per_seed.groupby(keys, sort=False, dropna=False):
        row: dict[str, object] = {}
        for col in per_seed.columns:
            if col == "seed":
                row["n_seeds"] = len(part)
            elif col in keys:
                row[col] = part[col].iloc[0]
            elif not pd.api.types.is_numeric_dtype(part[col]) or pd.api.types.is_bool_dtype(part[col]):
                row[col] = _common(part[col])
            elif col in metrics:
                row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = t_interval(part[col])
            else:
                row[col] = float(part[col].mean())
        rows.append(row)
    return pd.DataFrame(rows)
