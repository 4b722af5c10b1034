"""The results bundle and the leaderboard of an experiment (docs/statistics.md, "Leaderboard").

- ``results``: one long table of every attack outcome, one row per dataset × victim × defense ×
  operating point × attack × view × transfer set × queries × seed (:data:`BUNDLE_COLUMNS`; the
  schema is documented in docs/results-schema.md). KnockoffNets rows come from the clones of the
  sweeps (every view: soft, label-only, defense-aware, the worst case over them) and from the
  budget clones; DFME / MAZE rows from the selected students and from their checkpoints. A
  defense's ``latency_ratio`` is its ms per query over the undefended victim's, one query at a
  time (``tables/latency``).
- ``leaderboard``: the defenses of each victim and KnockoffNets query set ranked by the worst-case
  clone accuracy over the attackers the experiment ran, at the strongest setting whose defender
  accuracy cost is at most :data:`~msdefense.reporting.claim_inputs.UTILITY_MARGIN` (the claims'
  utility margin; matched along each seed's curve as in ``tables/interpolation``), with its 95%
  interval over the seeds and test images, the undefended victim as the reference row, and the
  latency ratio beside its floor (1.0: an output-only rule cannot answer faster than the
  undefended pass).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .claim_inputs import UTILITY_MARGIN
from .replicates import summarise
from .worst_case import WORST

#: The columns of the results bundle, in order.
BUNDLE_COLUMNS = [
    "experiment",
    "dataset",
    "victim",
    "defense",
    "method",
    "param",
    "attack",
    "view",
    "transfer",
    "queries",
    "point",
    "seed",
    "defender_acc",
    "clone_acc",
    "fidelity",
    "l1_distance",
    "latency_ratio",
    "test_images",
]
#: ``point``: the attack's outcome at its whole budget, or a point of its budget curve before it.
FINAL, CURVE = "final", "curve"
#: The latency ratio an output-only defense cannot go below: the undefended pass itself.
LATENCY_FLOOR = 1.0
#: The query-at-a-time batch size of ``tables/latency`` the ratio is read at.
LATENCY_BATCH = 1
#: The utility budget of ``tables/interpolation`` the leaderboard ranks at.
UTILITY_BUDGET = f"defender_err_+{UTILITY_MARGIN * 100:g}pt"


def latency_ratios(latency: pd.DataFrame) -> pd.DataFrame:
    """Per victim and defense: ms per query at :data:`LATENCY_BATCH` over the undefended
    victim's (``tables/latency``, read with :func:`~msdefense.reporting.read_table`)."""
    one = latency[latency["batch_size"] == LATENCY_BATCH]
    undefended = one[one["method"] == "None"]
    base = undefended.groupby("victim")["ms_per_query"].first()
    ratio = one["ms_per_query"] / one["victim"].map(base)
    return one.assign(latency_ratio=ratio)[["victim", "defense", "latency_ratio"]]


def results_bundle(
    *,
    experiment: str,
    datasets: Mapping[str, str],
    knockoff: pd.DataFrame,
    datafree: pd.DataFrame | None = None,
    budgets: pd.DataFrame | None = None,
    latency: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The long table (:data:`BUNDLE_COLUMNS`) from the per-seed tables ``knockoff_seeds``,
    ``datafree_seeds``, ``budget_seeds`` and the ``latency`` table; ``datasets``: victim → dataset."""
    parts = [knockoff.assign(attack="knockoff", view=knockoff["labels"], point=FINAL)]
    if datafree is not None and not datafree.empty:
        parts.append(datafree.assign(view=datafree["oracle_view"], transfer="-", point=FINAL))
    if budgets is not None and not budgets.empty:
        # a curve's last point is its final row (the sweep's clone, the selected student)
        last = budgets.groupby(["attack", "victim", "transfer", "defense", "param", "seed"])["queries"]
        before = budgets[budgets["queries"] < last.transform("max")]
        views = {"knockoff": "soft"}  # the budget clones learn from the soft answers
        if datafree is not None and not datafree.empty:
            views |= datafree.groupby("attack")["oracle_view"].first().to_dict()
        parts.append(before.assign(view=before["attack"].map(views), point=CURVE))
    df = pd.concat(parts, ignore_index=True)
    unknown = sorted(set(df["victim"]) - set(datasets))
    if unknown:
        raise ValueError(f"results bundle: no dataset for victim(s) {unknown}")
    df = df.assign(experiment=experiment, dataset=df["victim"].map(datasets), param=df["param"].astype(float))
    if latency is not None and not latency.empty:
        df = df.merge(latency_ratios(latency), on=["victim", "defense"], how="left")
    for column in BUNDLE_COLUMNS:
        if column not in df:
            df[column] = np.nan
    order = [
        "dataset",
        "victim",
        "defense",
        "param",
        "attack",
        "view",
        "transfer",
        "point",
        "queries",
        "seed",
    ]
    return df[BUNDLE_COLUMNS].sort_values(order, kind="stable").reset_index(drop=True)


def leaderboard(
    interpolation: pd.DataFrame, knockoff: pd.DataFrame, latency: pd.DataFrame | None
) -> pd.DataFrame:
    """Defenses ranked by worst-case clone accuracy within the utility margin, per victim and
    query set (``interpolation``: ``interpolation_seeds``; ``knockoff``: ``knockoff_seeds``, for
    the undefended reference). Where the experiment ran one kind of attacker there is no worst
    case; that kind's rows are ranked and ``view`` says which."""
    rows = []
    for (victim, transfer), part in interpolation.groupby(["victim", "transfer"], sort=True):
        view = WORST if (part["labels"] == WORST).any() else part["labels"].iloc[0]
        chosen = part[(part["labels"] == view) & (part["budget"] == UTILITY_BUDGET)]
        chosen = chosen.assign(clone_acc=1 - chosen["clone_err"], defender_acc=1 - chosen["defender_err"])
        reference = knockoff[
            (knockoff["victim"] == victim)
            & (knockoff["transfer"] == transfer)
            & (knockoff["labels"] == view)
            & (knockoff["method"] == "None")
        ].assign(match="undefended")
        keep = [
            "victim",
            "transfer",
            "defense",
            "seed",
            "param",
            "clone_acc",
            "defender_acc",
            "match",
            "test_images",
        ]
        rows.append(pd.concat([chosen[keep], reference[keep]], ignore_index=True).assign(view=view))
    if not rows:
        return pd.DataFrame()
    per_seed = pd.concat(rows, ignore_index=True).dropna(subset=["clone_acc"])
    per_seed = per_seed.assign(param=per_seed["param"].astype(float))
    table = summarise(
        per_seed, ["victim", "transfer", "view", "defense"], metrics=("clone_acc", "defender_acc")
    )
    if latency is not None and not latency.empty:
        table = table.merge(latency_ratios(latency), on=["victim", "defense"], how="left")
    else:
        table["latency_ratio"] = np.nan
    table["latency_floor"] = LATENCY_FLOOR
    table["utility_margin"] = UTILITY_MARGIN
    table = table.sort_values(["victim", "transfer", "clone_acc"], kind="stable")
    table["rank"] = table.groupby(["victim", "transfer"]).cumcount() + 1
    first = ["rank", "victim", "transfer", "view", "defense", "param", "clone_acc", "clone_acc_ci_low"]
    return table[[*first, *[c for c in table.columns if c not in first]]].reset_index(drop=True)
