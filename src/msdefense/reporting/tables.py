"""The papers' tables, built from the per-run metrics records (JSON), and their CSV / Markdown files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..io import atomic_path
from ..records import read_records
from ..sweeps import API_GRANULARITY
from .claim_inputs import strengths
from .matching import UNMATCHED, Point, strongest_within
from .replicates import TEST_IMAGES, summarise, test_images_of
from .worst_case import with_worst_case

#: What identifies one setting of a table; its per-seed rows add ``seed``.
KNOCKOFF_KEYS = ["victim", "transfer", "labels", "defense", "param"]
KNOCKOFF_COLUMNS = [
    *KNOCKOFF_KEYS,
    "defender_acc",
    "clone_acc",
    "fidelity",
    "l1_distance",
    "queries",
    "clone_acc_final",
    "fidelity_final",
    "epochs_run",
    "stop_reason",
    "test_images",
]

DATAFREE_KEYS = ["attack", "oracle_view", "victim", "defense", "param"]
DATAFREE_COLUMNS = [
    *DATAFREE_KEYS,
    "defender_acc",
    "clone_acc",
    "fidelity",
    "queries",
    "clone_acc_final",
    "fidelity_final",
    "best_val_acc",
    "method",
    "preset",
    "test_images",
]


def _records(
    metric_paths: Sequence[str | Path], kind: str, what: str, columns: Sequence[str]
) -> pd.DataFrame:
    """The checked records of ``kind`` (:func:`msdefense.records.read_records`), each with ``columns``."""
    rows = read_records(metric_paths, kind, require=columns)
    if not rows:
        raise ValueError(f"no {what} metrics to tabulate")
    return pd.DataFrame(rows)


def knockoff_seeds(metric_paths: Sequence[str | Path]) -> pd.DataFrame:
    """The KnockoffNets runs, one row per victim × transfer set × label kind (``soft``: the answered
    posteriors; ``argmax``: their top-1 labels; ``restored``: the defense-aware attacker's; ``worst``:
    the best clone of these on the seed, :mod:`.worst_case`, ``decided_by`` naming whose) × defense
    × ε × seed, accuracies as fractions in [0, 1].

    ``clone_acc`` / ``fidelity`` are the clone selected on the validation split; ``*_final``
    the clone after the last epoch. The columns are :data:`KNOCKOFF_KEYS`, ``seed``, the other
    :data:`KNOCKOFF_COLUMNS` and ``method`` (the defense's registry name).
    """
    df = _records(metric_paths, "knockoff", "KnockoffNets", [*KNOCKOFF_COLUMNS, "method", "seed"])
    df = with_worst_case(df[[*KNOCKOFF_COLUMNS, "method", "seed"]])
    df["param_value"] = df["param"].astype(float)
    df = df.sort_values([*KNOCKOFF_KEYS[:4], "param_value", "seed"], kind="stable")
    cols = [*KNOCKOFF_KEYS, "seed", *KNOCKOFF_COLUMNS[len(KNOCKOFF_KEYS) :], "method", "decided_by"]
    return df[cols].reset_index(drop=True)


def knockoff_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """:func:`knockoff_seeds` over the seeds: one row per setting, mean, ``n_seeds`` and the 95%
    interval of clone accuracy, defender accuracy, fidelity and L1 distance (:func:`summarise`)."""
    return summarise(per_seed, [*KNOCKOFF_KEYS, "method"])


def _curve(undefended: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """A defense's curve: the undefended run, then the defense's runs from its weakest value to its
    strongest (:func:`msdefense.sweeps.strength`)."""
    return pd.concat([undefended, runs.assign(_s=strengths(runs)).sort_values("_s").drop(columns="_s")])


def _at(curve: pd.DataFrame, point: Point, column: str) -> float:
    return point.value(list(curve[column].astype(float)))


DEFENDER_ERROR_STEPS = (1, 2, 5)  # percentage points above the undefended defender error
EFFECTIVE_EPS = (0.1, 0.2, 0.5)  # mean L1 distance of the answers
INTERPOLATION_KEYS = ["victim", "transfer", "labels", "defense", "budget"]


def interpolation_seeds(knockoff: pd.DataFrame) -> pd.DataFrame:
    """GRAD² table (Mazeika et al. 2022, ICML; their ``parse_results.ipynb``), one row per victim ×
    transfer set × label kind × defense × budget × seed: the clone error a defense reaches within a defender
    error of the undefended error + 1, 2, 5 points (``budget`` = ``defender_err_+1pt`` …) and
    within an effective ε (mean L1) of 0.1, 0.2, 0.5 (``l1_0.1`` …), matched along each seed's
    curve by :func:`~msdefense.reporting.matching.strongest_within` (``match`` says how); the
    defense's ``param``, ``defender_err`` and ``l1_distance`` at that point. Errors are fractions.
    ``knockoff`` is :func:`knockoff_seeds`."""
    rows = []
    for (victim, transfer, labels, seed), part in knockoff.groupby(
        ["victim", "transfer", "labels", "seed"], sort=True
    ):
        undefended = part[part["method"] == "None"].head(1)
        for defense, runs in part[part["method"] != "None"].groupby("defense", sort=True):
            curve = _curve(undefended, runs)
            acc, clone = list(curve["defender_acc"]), list(curve["clone_acc"])
            budgets = [
                (
                    f"defender_err_+{step}pt",
                    acc,
                    float(acc[0]) - step / 100 if len(undefended) else math.nan,
                    True,
                )
                for step in DEFENDER_ERROR_STEPS
            ]
            budgets += [(f"l1_{eps}", list(curve["l1_distance"]), eps, False) for eps in EFFECTIVE_EPS]
            for budget, xs, target, at_least in budgets:
                point = (
                    UNMATCHED
                    if math.isnan(target)
                    else strongest_within(xs, clone, target, at_least=at_least)
                )
                rows.append(
                    {
                        "victim": victim,
                        "transfer": transfer,
                        "labels": labels,
                        "defense": defense,
                        "budget": budget,
                        "seed": seed,
                        "clone_err": 1 - _at(curve, point, "clone_acc"),
                        "param": _at(curve, point, "param"),
                        "defender_err": 1 - _at(curve, point, "defender_acc"),
                        "l1_distance": _at(curve, point, "l1_distance"),
                        "match": point.match,
                        TEST_IMAGES: test_images_of(curve),
                    }
                )
    return pd.DataFrame(rows)


def interpolation_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """:func:`interpolation_seeds` over the seeds (mean, ``n_seeds``, 95% intervals)."""
    return summarise(per_seed, INTERPOLATION_KEYS, metrics=("clone_err", "defender_err", "l1_distance"))


LATENCY_COLUMNS = [
    "victim",
    "defense",
    "batch_size",
    "ms_per_query",
    "ms_per_query_iqr",
    "overhead_vs_none",
    "overhead_ci_low",
    "overhead_ci_high",
    "reliable",
    "repeats",
    "slowdown_vs_dcp",
    "method",
]


def latency_table(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per victim × defense × batch size; ``slowdown_vs_dcp`` divides by the DCP row
    (method ``DCP``) of the same victim and batch size (NaN without one). ``overhead_ci_*`` is the
    95% bootstrap interval of ``overhead_vs_none``; ``reliable`` says whether it came within the
    configured half-width (:func:`msdefense.latency.timed_pairs`)."""
    measured = [c for c in LATENCY_COLUMNS if c != "slowdown_vs_dcp"]
    df = pd.DataFrame(
        read_records(paths, "latency", require=measured, unique=["victim", "defense", "batch_size"])
    )
    if df.empty:
        raise ValueError("no latency measurements to tabulate")
    dcp = df[df["method"] == "DCP"].groupby(["victim", "batch_size"])["ms_per_query"].min()
    keys = pd.MultiIndex.from_frame(df[["victim", "batch_size"]])
    df["slowdown_vs_dcp"] = df["ms_per_query"].to_numpy() / dcp.reindex(keys).to_numpy()
    # sorted by names, not by a measured ratio: the row order does not follow the noise
    return df.sort_values(["victim", "batch_size", "defense"], kind="stable")[LATENCY_COLUMNS].reset_index(
        drop=True
    )


def to_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (floats rounded to ``digits``)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in df.itertuples(False)]
    header = "| " + " | ".join(df.columns) + " |"
    rule = (
        "|"
        + "|".join(" ---: " if pd.api.types.is_numeric_dtype(df[c]) else " --- " for c in df.columns)
        + "|"
    )
    return "\n".join([header, rule, *("| " + " | ".join(r) + " |" for r in cells)]) + "\n"


def read_table(csv_path: str | Path) -> pd.DataFrame:
    """A table written by :func:`write_csv`: empty cells are NaN, and only they (the method name
    ``None`` stays a string)."""
    return pd.read_csv(csv_path, keep_default_na=False, na_values=[""])


def write_csv(df: pd.DataFrame, csv_path: str | Path) -> None:
    """Write ``df`` as CSV (empty cells for NaN), atomically."""
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)


def write_table(df: pd.DataFrame, csv_path: str | Path, md_path: str | Path) -> None:
    """Write ``df`` as CSV (empty cells for NaN) and as a Markdown table."""
    write_csv(df, csv_path)
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(df))


def datafree_seeds(metric_paths: Sequence[str | Path]) -> pd.DataFrame:
    """The data-free runs, one row per attack × victim × defense × ε × seed (:data:`DATAFREE_KEYS`,
    ``seed``, the other :data:`DATAFREE_COLUMNS`).

    ``clone_acc`` / ``fidelity``: the student selected on the validation split; ``*_final``: the
    student after the last iteration; ``queries``: oracle queries spent (probes included)."""
    df = _records(metric_paths, "datafree", "data-free attack", [*DATAFREE_COLUMNS, "seed"])
    df["param_value"] = df["param"].astype(float)
    df = df.sort_values(["attack", "victim", "defense", "param_value", "seed"], kind="stable")
    cols = [*DATAFREE_KEYS, "seed", *DATAFREE_COLUMNS[len(DATAFREE_KEYS) :]]
    return df[cols].reset_index(drop=True)


def datafree_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """:func:`datafree_seeds` over the seeds (mean, ``n_seeds``, 95% intervals)."""
    return summarise(per_seed, [*DATAFREE_KEYS, "method"])


QUANTIZATION_KEYS = ["victim", "precision", "backend"]
QUANTIZATION_COLUMNS = [
    *QUANTIZATION_KEYS,
    "accuracy",
    "size_mb",
    "ms_per_query_b1",
    "ms_per_query_b64",
    "mode",
    "source",
]
#: Columns of the tables that hold measured times: they vary from run to run (every other cell of
#: the per-run tables is the same, byte for byte, in two runs of one config)
TIMING_COLUMNS = ("ms_per_query_b1", "ms_per_query_b64")


def quantization_seeds(
    victim_metrics: Sequence[str | Path], latency_paths: Sequence[str | Path]
) -> pd.DataFrame:
    """The quantization table of Khaled et al. 2023 (ICMLA), one row per fp32 source and int8
    victim and seed: test accuracy, weight size and the undefended oracle's ms per query at batch
    1 and 64 (measured on the first seed's victims; NaN where not measured)."""
    lat = pd.DataFrame(read_records(latency_paths, "latency", require=["ms_undefended"]))
    # every latency row carries the undefended pass timed beside it: use the row of the first defense
    undefended = lat.groupby(["victim", "batch_size"])["ms_undefended"].first() if len(lat) else pd.Series()

    def ms(victim: str, batch: int) -> float:
        return float(undefended.get((victim, batch), math.nan))

    rows = []
    for m in read_records(victim_metrics, "quantized_victim"):  # int8 victims only
        for victim, precision, backend, acc, size, mode in (
            (m["source"], "fp32", "fp32", m["source_test_acc"], m["source_size_mb"], "-"),
            (m["victim"], "int8", m["backend"], m["test_acc"], m["size_mb"], m["mode"]),
        ):
            rows.append(
                {
                    "victim": victim,
                    "precision": precision,
                    "backend": backend,
                    "seed": m["seed"],
                    "accuracy": acc,
                    "size_mb": size,
                    "ms_per_query_b1": ms(victim, 1),
                    "ms_per_query_b64": ms(victim, 64),
                    "mode": mode,
                    "source": m["source"],
                }
            )
    if not rows:
        raise ValueError("no quantized victims to tabulate")
    df = pd.DataFrame(rows).drop_duplicates(subset=["victim", "seed"])  # a source of several int8 copies
    df = df.sort_values(["source", "precision", "victim", "seed"], kind="stable")
    return df[[*QUANTIZATION_KEYS, "seed", *QUANTIZATION_COLUMNS[len(QUANTIZATION_KEYS) :]]].reset_index(
        drop=True
    )


def quantization_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """:func:`quantization_seeds` over the seeds (mean, ``n_seeds``, 95% interval of the accuracy)."""
    return summarise(per_seed, QUANTIZATION_KEYS, metrics=("accuracy",))


MISLEADER_KEYS = ["dataset", "row", "victim", "defense", "attack"]
MISLEADER_COLUMNS = [
    *MISLEADER_KEYS,
    "param",
    "defender_acc",
    "defender_acc_gap",
    "clone_acc",
    "fidelity",
    "match",
    "test_images",
]


def knockoff_attack_names(knockoff: pd.DataFrame) -> pd.Series:
    """KnockoffNets as an attack of Table B: ``knockoff/<transfer set>`` (soft labels) or
    ``knockoff_argmax/<transfer set>`` (top-1 labels)."""
    kind = knockoff["labels"].map(lambda k: "knockoff" if k == "soft" else f"knockoff_{k}")
    return kind + "/" + knockoff["transfer"]


def misleader_seeds(
    ensembles: Sequence[str | Path], knockoff: pd.DataFrame, datafree: pd.DataFrame | None
) -> pd.DataFrame:
    """The MISLEADER comparison table (Cheng et al. 2025), one row per dataset × row × attack × seed
    (long format).

    Rows: the undefended teacher; each baseline defense on the teacher, matched to MISLEADER's
    defended accuracy of the same attack and seed along the baseline's curve (undefended run
    first, then its sweep) by :func:`~msdefense.reporting.matching.strongest_within`: the
    baseline's strongest point whose defended accuracy is at least MISLEADER's, interpolated
    where the curve crosses it (``param``, accuracies and fidelity at that point; ``match`` says
    how); and MISLEADER (the ensemble, undefended). Attacks: :func:`knockoff_attack_names` for each
    transfer set and label kind (soft, argmax) of the ensemble, and every data-free attack run
    against it. Baselines: the papers' defenses (not the API-granularity ones, :mod:`msdefense.sweeps`).
    ``defender_acc_gap`` = the row's defended accuracy minus MISLEADER's. ``knockoff`` and
    ``datafree`` are :func:`knockoff_seeds` and :func:`datafree_seeds`."""
    # soft and label-only clones: against an undefended victim the defense-aware clone is the soft
    # one (the identity is inverted exactly), and the worst case repeats one of them
    knockoff = knockoff[knockoff["labels"].isin(["soft", "argmax"])]
    attacks = knockoff.assign(attack=knockoff_attack_names(knockoff))
    frames = [attacks]
    if datafree is not None and not datafree.empty:
        frames.append(datafree)
    runs = pd.concat(frames, ignore_index=True)
    rows = []
    for meta in read_records(ensembles, "ensemble"):
        ens, teacher, seed = meta["victim"], meta["teacher"], meta["seed"]
        mine_all = runs[(runs["victim"] == ens) & (runs["method"] == "None") & (runs["seed"] == seed)]
        for attack, mine in mine_all.groupby("attack", sort=True):
            target = float(mine["defender_acc"].iloc[0])
            base = runs[(runs["victim"] == teacher) & (runs["attack"] == attack) & (runs["seed"] == seed)]
            undefended = base[base["method"] == "None"].head(1)
            picks = [("undefended", undefended, Point(0, 0.0, "interpolated"))]
            baselines = base[~base["method"].isin(["None", *API_GRANULARITY])]  # the papers' defenses
            for defense, sweep in baselines.groupby("defense", sort=True):
                curve = _curve(undefended, sweep)
                point = strongest_within(
                    list(curve["defender_acc"]), list(curve["clone_acc"]), target, at_least=True
                )
                picks.append((defense, curve, point))
            picks.append(("MISLEADER", mine.head(1), Point(0, 0.0, "interpolated")))
            for label, curve, point in picks:
                if curve.empty:
                    continue
                defender_acc = _at(curve, point, "defender_acc")
                rows.append(
                    {
                        "dataset": meta["dataset"],
                        "row": label,
                        "victim": curve["victim"].iloc[-1],
                        "defense": curve["defense"].iloc[-1],
                        "attack": attack,
                        "seed": seed,
                        "param": _at(curve, point, "param"),
                        "defender_acc": defender_acc,
                        "defender_acc_gap": defender_acc - target,
                        "clone_acc": _at(curve, point, "clone_acc"),
                        "fidelity": _at(curve, point, "fidelity"),
                        "match": point.match if label not in ("undefended", "MISLEADER") else "-",
                        TEST_IMAGES: test_images_of(curve),
                    }
                )
    if not rows:
        raise ValueError("no MISLEADER ensemble runs to tabulate")
    return pd.DataFrame(rows)[[*MISLEADER_KEYS, "seed", *MISLEADER_COLUMNS[len(MISLEADER_KEYS) :]]]


def misleader_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """:func:`misleader_seeds` over the seeds (mean, ``n_seeds``, 95% intervals)."""
    return summarise(per_seed, MISLEADER_KEYS)
