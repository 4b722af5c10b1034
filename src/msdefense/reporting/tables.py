"""The papers' tables, built from the per-run metrics records (JSON), and their CSV / Markdown files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..io import atomic_path, load_json

KNOCKOFF_COLUMNS = [
    "victim",
    "transfer",
    "defense",
    "param",
    "defender_acc",
    "clone_acc",
    "fidelity",
    "l1_distance",
    "queries",
    "clone_acc_final",
    "fidelity_final",
]

DATAFREE_COLUMNS = [
    "attack",
    "oracle_view",
    "victim",
    "defense",
    "param",
    "defender_acc",
    "clone_acc",
    "fidelity",
    "queries",
    "clone_acc_final",
    "fidelity_final",
    "best_val_acc",
    "method",
]


def knockoff_table(metric_paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per victim × transfer set × defense × ε, accuracies as fractions in [0, 1].

    ``clone_acc`` / ``fidelity`` are the clone selected on the validation split; ``*_final``
    the clone after the last epoch. The columns are :data:`KNOCKOFF_COLUMNS` followed by
    ``method`` (the defense's registry name).
    """
    rows = []
    for path in metric_paths:  # a sweep's file holds the list of its values' records
        record = load_json(path)
        rows.extend(record if isinstance(record, list) else [record])
    if not rows:
        raise ValueError("no KnockoffNets metrics to tabulate")
    df = pd.DataFrame(rows)
    missing = [c for c in [*KNOCKOFF_COLUMNS, "method"] if c not in df]
    if missing:
        raise ValueError(f"metrics records lack the columns {missing}")
    df["param_value"] = df["param"].astype(float)
    df = df.sort_values(["victim", "transfer", "defense", "param_value"], kind="stable")
    return df[[*KNOCKOFF_COLUMNS, "method"]].reset_index(drop=True)


def first_crossing(xs: Sequence[float], ys: Sequence[float], target: float) -> float:
    """y where the curve (xs, ys), followed in sweep order, first reaches x = ``target``
    (linear interpolation within the segment); NaN if it never does."""
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if x == target:
            return float(y)
        if i and (xs[i - 1] - target) * (x - target) < 0:
            w = (target - xs[i - 1]) / (x - xs[i - 1])
            return float(ys[i - 1] + w * (y - ys[i - 1]))
    return float("nan")


DEFENDER_ERROR_STEPS = (1, 2, 5)  # percentage points above the undefended defender error
EFFECTIVE_EPS = (0.1, 0.2, 0.5)  # mean L1 distance of the answers


def interpolation_table(knockoff: pd.DataFrame) -> pd.DataFrame:
    """GRAD² table (Mazeika et al. 2022, ICML; their ``parse_results.ipynb``): per victim ×
    transfer set × defense, the clone error at defender error = undefended error + 1, 2, 5 points
    and at effective ε = 0.1, 0.2, 0.5, interpolated along the defense's sweep; NaN (blank) where the curve does
    not reach the point. Each curve starts at the undefended run (every method at its zero
    parameter answers like the undefended oracle); without one, the +N-point columns are NaN.
    Errors are fractions."""
    rows = []
    for (victim, transfer), part in knockoff.groupby(["victim", "transfer"], sort=True):
        undefended = part[part["method"] == "None"].head(1)
        for defense, curve in part[part["method"] != "None"].groupby("defense", sort=True):
            curve = pd.concat([undefended, curve.sort_values("param", key=lambda s: s.astype(float))])
            def_err, clone_err = list(1 - curve["defender_acc"]), list(1 - curve["clone_acc"])
            base = def_err[0] if len(undefended) else float("nan")
            row = {"victim": victim, "transfer": transfer, "defense": defense}
            for step in DEFENDER_ERROR_STEPS:
                row[f"clone_err_at_defender_err_+{step}pt"] = first_crossing(
                    def_err, clone_err, base + step / 100
                )
            for eps in EFFECTIVE_EPS:
                row[f"clone_err_at_l1_{eps}"] = first_crossing(list(curve["l1_distance"]), clone_err, eps)
            rows.append(row)
    return pd.DataFrame(rows)


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
]


def latency_table(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per victim × defense × batch size; ``slowdown_vs_dcp`` divides by the DCP row
    (method ``DCP``) of the same victim and batch size (NaN without one). ``overhead_ci_*`` is the
    95% bootstrap interval of ``overhead_vs_none``; ``reliable`` says whether it came within the
    configured half-width (:func:`msdefense.latency.timed_pairs`)."""
    df = pd.DataFrame([row for p in paths for row in load_json(p)])
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


def write_table(df: pd.DataFrame, csv_path: str | Path, md_path: str | Path) -> None:
    """Write ``df`` as CSV (empty cells for NaN) and as a Markdown table."""
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(df))


def datafree_table(metric_paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per data-free attack × victim × defense × ε (:data:`DATAFREE_COLUMNS`).

    ``clone_acc`` / ``fidelity``: the student selected on the validation split; ``*_final``: the
    student after the last iteration; ``queries``: oracle queries spent (probes included)."""
    rows = [load_json(p) for p in metric_paths]
    if not rows:
        raise ValueError("no data-free attack metrics to tabulate")
    df = pd.DataFrame(rows)
    missing = [c for c in DATAFREE_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"metrics records lack the columns {missing}")
    df["param_value"] = df["param"].astype(float)
    df = df.sort_values(["attack", "victim", "defense", "param_value"], kind="stable")
    return df[DATAFREE_COLUMNS].reset_index(drop=True)


QUANTIZATION_COLUMNS = [
    "victim",
    "precision",
    "backend",
    "accuracy",
    "size_mb",
    "ms_per_query_b1",
    "ms_per_query_b64",
    "mode",
    "source",
]


def quantization_table(
    victim_metrics: Sequence[str | Path], latency_paths: Sequence[str | Path]
) -> pd.DataFrame:
    """The quantization table of Khaled et al. 2023 (ICMLA): one row per fp32 source and int8
    victim, with test accuracy, weight size and the undefended oracle's ms per query at batch 1
    and 64 (NaN where not measured)."""
    lat = pd.DataFrame([row for p in latency_paths for row in load_json(p)])
    # every latency row carries the undefended pass timed beside it: use the row of the first defense
    undefended = lat.groupby(["victim", "batch_size"])["ms_undefended"].first()

    def ms(victim: str, batch: int) -> float:
        return float(undefended.get((victim, batch), math.nan))

    rows = []
    for m in (load_json(p) for p in victim_metrics):
        if m.get("precision") != "int8":
            continue
        for victim, precision, backend, acc, size, mode in (
            (m["source"], "fp32", "fp32", m["source_test_acc"], m["source_size_mb"], "-"),
            (m["victim"], "int8", m["backend"], m["test_acc"], m["size_mb"], m["mode"]),
        ):
            rows.append(
                {
                    "victim": victim,
                    "precision": precision,
                    "backend": backend,
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
    df = pd.DataFrame(rows).drop_duplicates(subset=["victim"])
    return df.sort_values(["source", "precision", "victim"], kind="stable")[QUANTIZATION_COLUMNS].reset_index(
        drop=True
    )


MISLEADER_COLUMNS = [
    "dataset",
    "row",
    "victim",
    "defense",
    "attack",
    "param",
    "defender_acc",
    "defender_acc_gap",
    "clone_acc",
    "fidelity",
]


def misleader_table(
    ensembles: Sequence[str | Path], knockoff: pd.DataFrame, datafree: pd.DataFrame | None
) -> pd.DataFrame:
    """The MISLEADER comparison table (Cheng et al. 2025), one row per dataset × row × attack (long format).

    Rows: the undefended teacher; each baseline defense on the teacher at the ε (among those run
    for that attack) whose defender accuracy is closest to MISLEADER's; and MISLEADER (the
    ensemble, undefended). Attacks: ``knockoff/<transfer set>`` for each transfer set of the
    ensemble, and every data-free attack run against it. ``defender_acc_gap`` = the row's defended
    accuracy minus MISLEADER's: the match is only as close as the values that were run allow (the
    default experiment runs the data-free attacks at one value per defense)."""
    attacks = knockoff.assign(attack="knockoff/" + knockoff["transfer"])
    frames = [attacks]
    if datafree is not None and not datafree.empty:
        frames.append(datafree)
    runs = pd.concat(frames, ignore_index=True)
    rows = []
    for meta in (load_json(p) for p in ensembles):
        ens, teacher = meta["victim"], meta["teacher"]
        own = runs[(runs["victim"] == ens) & (runs["method"] == "None")]
        for attack, mine in own.groupby("attack", sort=True):
            target = float(mine["defender_acc"].iloc[0])
            base = runs[(runs["victim"] == teacher) & (runs["attack"] == attack)]
            picks = [("undefended", base[base["method"] == "None"].head(1))]
            for defense, curve in base[base["method"] != "None"].groupby("defense", sort=True):
                closest = (curve["defender_acc"] - target).abs().idxmin()
                picks.append((defense, curve.loc[[closest]]))
            picks.append(("MISLEADER", mine.head(1)))
            for label, pick in picks:
                if pick.empty:
                    continue
                r = pick.iloc[0]
                rows.append(
                    {
                        "dataset": meta["dataset"],
                        "row": label,
                        "victim": r["victim"],
                        "defense": r["defense"],
                        "attack": attack,
                        "param": r["param"],
                        "defender_acc": r["defender_acc"],
                        "defender_acc_gap": r["defender_acc"] - target,
                        "clone_acc": r["clone_acc"],
                        "fidelity": r["fidelity"],
                    }
                )
    if not rows:
        raise ValueError("no MISLEADER ensemble runs to tabulate")
    return pd.DataFrame(rows)[MISLEADER_COLUMNS]
