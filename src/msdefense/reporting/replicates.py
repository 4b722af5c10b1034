"""Replicates: one table row per setting from the per-seed rows, with the mean over seeds, the
number of seeds and a 95% interval (docs/statistics.md).

The interval is Student's t over the seeds' values, ``mean ± t(0.975, n − 1) · se``. For a
quantity measured on the fixed test set (an accuracy, a fidelity, a difference of two of them)
``se² = s² / n + v / N``: the seeds' spread, and a bound ``v`` on the per-image variance of the
test set's ``N`` images (:func:`estimate`), so the interval covers a new test set as well as new
seeds. It is clipped to the quantity's range. With one seed it is blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CI_LEVEL = 0.95
#: The power at which a row's minimum detectable effect is given (docs/statistics.md).
POWER = 0.80
#: The metrics every table gives an interval for (where the table has them).
INTERVAL_METRICS = ("clone_acc", "defender_acc", "fidelity", "l1_distance")
#: Metrics that are a fraction of the test images (their intervals get the test-set term and stay
#: within [0, 1]).
FRACTION_METRICS = ("clone_acc", "defender_acc", "fidelity", "accuracy", "clone_err", "defender_err")
#: The column of a per-seed table that gives the number of test images its fractions count.
TEST_IMAGES = "test_images"
#: How a quantity's test-set variance per image is bounded, by the quantity's kind:
#: ``fraction`` (in [0, 1], mean m: m(1 − m), the Bernoulli variance and, for a mean of several
#: seeds' 0/1 outcomes per image, the Bhatia–Davis bound), ``difference`` (of two fractions of
#: the same images, in [−1, 1]: (1 − m)(1 + m), Bhatia–Davis), ``none`` (not measured on the
#: test images: latency ratios, L1 distances).
SPREADS = ("fraction", "difference", "none")
_RANGES = {"fraction": (0.0, 1.0), "difference": (-1.0, 1.0), "none": (-math.inf, math.inf)}


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its standard error and the 95% interval, clipped to ``bounds``."""

    mean: float
    se: float
    n: int
    low: float
    high: float

    @property
    def df(self) -> int:
        return self.n - 1

    def p_value(self, threshold: float) -> float:
        """Two-sided p of the t-test that the quantity equals ``threshold`` (NaN without an interval)."""
        if self.n < 2 or not math.isfinite(self.se):
            return math.nan
        if self.se == 0:
            return 1.0 if self.mean == threshold else 0.0
        return float(2 * stats.t.sf(abs(self.mean - threshold) / self.se, self.df))

    def mde(self, power: float = POWER) -> float:
        """The smallest distance from a threshold that this design detects with ``power``
        (two-sided t-test at 1 − CI_LEVEL): ``(t(0.975, n − 1) + t(power, n − 1)) · se``."""
        if self.n < 2 or not math.isfinite(self.se):
            return math.nan
        return float((stats.t.ppf(0.5 + CI_LEVEL / 2, self.df) + stats.t.ppf(power, self.df)) * self.se)


def estimate(
    values: Sequence[float],
    *,
    test_images: int | None = None,
    spread: str = "none",
    per_image: float | None = None,
) -> Estimate:
    """The mean of ``values`` (one per seed) and its 95% interval: Student's t with
    ``se² = s² / n + v / test_images``, ``v`` the per-image variance bound of ``spread``
    (:data:`SPREADS`) at the mean, or ``per_image`` where the caller has a tighter one (no test
    term without ``test_images``), clipped to the spread's range. All NaN if any value is NaN (a
    seed that did not reach a point is not averaged away); NaN bounds for fewer than two values."""
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {SPREADS}, got {spread!r}")
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or not np.isfinite(v).all():
        return Estimate(math.nan, math.nan, len(v), math.nan, math.nan)
    mean = float(v.mean())
    if len(v) < 2:
        return Estimate(mean, math.nan, len(v), math.nan, math.nan)
    var = float(v.var(ddof=1)) / len(v)
    if test_images and spread != "none":
        m = min(max(mean, _RANGES[spread][0]), _RANGES[spread][1])
        if per_image is None:
            per_image = m * (1 - m) if spread == "fraction" else (1 - m) * (1 + m)
        var += max(0.0, per_image) / int(test_images)
    se = math.sqrt(var)
    half = float(stats.t.ppf(0.5 + CI_LEVEL / 2, len(v) - 1) * se)
    lo, hi = _RANGES[spread]
    return Estimate(mean, se, len(v), max(lo, mean - half), min(hi, mean + half))


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


def paired_bound(a: Sequence[float], b: Sequence[float]) -> float:
    """A bound on the per-image variance of a difference of two fractions of the same images,
    ``a`` and ``b`` one value per seed (accuracies, or errors): the mean over seeds of the share
    of images on which the two can disagree, ``min(a + b, 2 − a − b)`` (two accuracies of 0.99
    disagree on at most 2% of the images), minus the squared mean difference. Tighter than
    :data:`SPREADS`' ``difference`` bound when both fractions are near 0 or near 1."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    disagree = np.minimum(x + y, 2 - x - y).clip(0, 1)
    return float(disagree.mean() - (x - y).mean() ** 2)


def test_images_of(rows: pd.DataFrame) -> int | None:
    """The number of test images behind the accuracies of ``rows`` (their :data:`TEST_IMAGES`
    column; the smallest if they differ), or None where the rows do not record it."""
    if TEST_IMAGES not in rows or rows[TEST_IMAGES].isna().all():
        return None
    return int(rows[TEST_IMAGES].min())


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
    ``<metric>_ci_low`` / ``<metric>_ci_high`` (:func:`estimate`: the :data:`FRACTION_METRICS`
    with the test-set term of the :data:`TEST_IMAGES` column where the table has one, within
    [0, 1]). Refuses a setting that has the same seed twice."""
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
                fraction = col in FRACTION_METRICS
                n_test = test_images_of(part) if fraction else None
                est = estimate(part[col], test_images=n_test, spread="fraction" if fraction else "none")
                row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = est.mean, est.low, est.high
            else:
                row[col] = float(part[col].mean())
        rows.append(row)
    return pd.DataFrame(rows)
