"""Budget curves: clone accuracy against the oracle queries the attacker spent.

KnockoffNets: the soft-label clones of ``knockoff.budgets``, each retrained from scratch on the
first ``b`` queries of the attacker's query order (:func:`msdefense.attacks.knockoff.first_queries`),
and the sweep's own clone on every query. DFME / MAZE: the student at each validation checkpoint of
one run, as the attacker stopping there would keep it (the best on validation so far), scored on
the test set. Three tables (docs/statistics.md, "Budget curves"):

- ``budget_seeds``: one row per attack × victim × transfer set × defense × value × queries × seed;
- ``budget_curves``: those over the seeds (mean, ``n_seeds``, 95% interval of ``clone_acc``);
- ``budget``: one row per curve: its area (:func:`curve_area`, mean and interval over the seeds)
  and the fewest queries at which the mean clone reaches :data:`REACH_FRACTION` of the victim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..records import read_records
from .replicates import estimate, summarise, test_images_of

#: What identifies one curve; a point adds ``queries``, a per-seed row ``seed``.
BUDGET_KEYS = ["attack", "victim", "transfer", "defense", "param"]
#: The fraction of the victim's test accuracy whose reach the ``budget`` table reports.
REACH_FRACTION = 0.9
#: The transfer column of the data-free attacks (they have no query set).
NO_TRANSFER = "-"


def knockoff_points(metric_paths: Sequence[str | Path], budget_paths: Sequence[str | Path]) -> pd.DataFrame:
    """The soft-label KnockoffNets clones of every budget: the budget clones and the sweeps' own
    clones (every query) at the values that have budget clones (all, or each defense's strongest:
    ``knockoff.strongest_only``; every value where the config has no ``knockoff.budgets``), one
    row each."""
    columns = [
        "victim",
        "transfer",
        "defense",
        "method",
        "param",
        "seed",
        "queries",
        "clone_acc",
        "test_images",
    ]
    full = [r for r in read_records(metric_paths, "knockoff", require=columns) if r["labels"] == "soft"]
    cut = read_records(budget_paths, "knockoff_budget", require=columns)
    if cut:  # without knockoff.budgets every sweep's clone is a one-point curve, as before
        curve = ("victim", "transfer", "defense", "param", "seed")
        with_budgets = {tuple(r[k] for k in curve) for r in cut}
        full = [r for r in full if tuple(r[k] for k in curve) in with_budgets]
    df = pd.DataFrame([*full, *cut], columns=[*columns, "defender_acc"])
    return df.assign(attack="knockoff")


def datafree_points(metric_paths: Sequence[str | Path], history_paths: Sequence[str | Path]) -> pd.DataFrame:
    """The DFME / MAZE students at every validation checkpoint of their runs (``history_paths``,
    in the order of ``metric_paths``): the test accuracy of the best student on validation so far
    (ties keep the earlier one, as the run's own selection does)."""
    rows = []
    for metrics, history in zip(metric_paths, history_paths, strict=True):
        (record,) = read_records([metrics], "datafree", require=["attack", "test_images", "defender_acc"])
        curve = pd.read_csv(history)
        if "test_acc" not in curve:
            raise ValueError(
                f"{history}: no test_acc column (a run before the budget curves): rerun run_datafree"
            )
        curve = curve.dropna(subset=["val_acc"])
        best_val, best_test = -math.inf, math.nan
        for queries, val, test in zip(
            curve["queries_used"], curve["val_acc"], curve["test_acc"], strict=True
        ):
            if val > best_val:
                best_val, best_test = val, test
            rows.append(
                {
                    **{k: record[k] for k in ("attack", "victim", "defense", "method", "param", "seed")},
                    "transfer": NO_TRANSFER,
                    "queries": int(queries),
                    "clone_acc": float(best_test),
                    "test_images": record["test_images"],
                    "defender_acc": record["defender_acc"],
                }
            )
    return pd.DataFrame(rows)


def budget_seeds(points: pd.DataFrame) -> pd.DataFrame:
    """Per-seed points with ``victim_acc`` (the undefended oracle's test accuracy on the seed)
    and ``relative`` (the clone's accuracy as a fraction of it), sorted along each curve."""
    points = points.assign(param=points["param"].astype(str))
    undefended = points[points["method"] == "None"]
    victim = undefended.groupby(["victim", "seed"])["defender_acc"].first().rename("victim_acc")
    df = points.join(victim, on=["victim", "seed"])
    df["relative"] = df["clone_acc"] / df["victim_acc"]
    df = df.sort_values([*BUDGET_KEYS, "queries", "seed"], kind="stable")
    return df[
        [*BUDGET_KEYS, "queries", "seed", "method", "clone_acc", "victim_acc", "relative", "test_images"]
    ].reset_index(drop=True)


def budget_curves(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Each curve's points over the seeds: mean, ``n_seeds`` and the 95% interval of ``clone_acc``."""
    return summarise(per_seed, [*BUDGET_KEYS, "queries"], metrics=("clone_acc",))


def curve_area(queries: Sequence[float], acc: Sequence[float]) -> float:
    """The area under accuracy against log10(queries), divided by the log range: the curve's mean
    accuracy over log-spaced budgets, in [0, 1] (a clone that learns from fewer queries scores
    higher). NaN for fewer than two budgets."""
    x, y = np.log10(np.asarray(queries, dtype=float)), np.asarray(acc, dtype=float)
    if len(x) < 2 or x[-1] <= x[0]:
        return math.nan
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def budget_table(per_seed: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """One row per curve: ``budgets`` (points), ``queries`` (the largest), ``auc`` with its 95%
    interval over the seeds (each seed's :func:`curve_area`; a seed missing a budget makes it
    NaN), and ``queries_to_<REACH_FRACTION>`` (the fewest queries at which the mean clone reaches
    that fraction of the mean victim accuracy; NaN: not within the budget)."""
    reach = f"queries_to_{REACH_FRACTION:g}"
    means = {key: part.sort_values("queries") for key, part in curves.groupby(BUDGET_KEYS, sort=False)}
    rows = []
    for key, part in per_seed.groupby(BUDGET_KEYS, sort=False):
        grid = sorted(part["queries"].unique())
        areas = []
        for _, seed in part.groupby("seed"):
            seed = seed.set_index("queries").reindex(grid)
            areas.append(curve_area(grid, seed["clone_acc"]))
        est = estimate(areas, test_images=test_images_of(part), spread="fraction")
        curve = means[key]
        victim = part["victim_acc"].mean()
        reached = curve.loc[curve["clone_acc"] >= REACH_FRACTION * victim, "queries"]
        rows.append(
            {
                **dict(zip(BUDGET_KEYS, key, strict=True)),
                "method": part["method"].iloc[0],
                "n_seeds": part["seed"].nunique(),
                "budgets": len(grid),
                "queries": int(grid[-1]),
                "clone_acc": float(curve["clone_acc"].iloc[-1]),
                "victim_acc": float(victim),
                "auc": est.mean,
                "auc_ci_low": est.low,
                "auc_ci_high": est.high,
                reach: float(reached.iloc[0]) if len(reached) else math.nan,
            }
        )
    return pd.DataFrame(rows)
