"""Tables and figures of the papers, built from the per-run metrics records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .io import atomic_path, load_json  # noqa: E402

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
    rows = [load_json(p) for p in metric_paths]
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
    """GRAD² table (Mazeika et al. 2022; reference §14.5): per victim × transfer set × defense,
    the clone error at defender error = undefended error + 1, 2, 5 points and at effective
    ε = 0.1, 0.2, 0.5, interpolated along the defense's sweep; NaN (blank) where the curve does
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


LATENCY_COLUMNS = ["victim", "defense", "batch_size", "ms_per_query", "overhead_vs_none", "slowdown_vs_dcp"]


def latency_table(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per victim × defense × batch size; ``slowdown_vs_dcp`` divides by the DCP row
    (method ``DCP``) of the same victim and batch size (NaN without one)."""
    df = pd.DataFrame([row for p in paths for row in load_json(p)])
    if df.empty:
        raise ValueError("no latency measurements to tabulate")
    dcp = df[df["method"] == "DCP"].groupby(["victim", "batch_size"])["ms_per_query"].min()
    keys = pd.MultiIndex.from_frame(df[["victim", "batch_size"]])
    df["slowdown_vs_dcp"] = df["ms_per_query"].to_numpy() / dcp.reindex(keys).to_numpy()
    return df.sort_values(["victim", "batch_size", "overhead_vs_none"], kind="stable")[
        LATENCY_COLUMNS
    ].reset_index(drop=True)


def latency_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Overhead over the undefended pass per defense (log scale), per victim and batch size."""
    sns.set_theme(style="whitegrid", context="paper")
    grid = sns.catplot(
        data=df.assign(batch=df["batch_size"].map(lambda b: f"batch {b}")),
        x="defense",
        y="overhead_vs_none",
        hue="batch",
        col="victim",
        kind="bar",
        height=3.4,
        aspect=1.4,
        sharey=False,
    )
    for ax in grid.axes.flat:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g×"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    grid.set_axis_labels("", "time per query / undefended")
    grid.set_titles("{col_name}")
    for path in (png_path, pdf_path):
        with atomic_path(path) as tmp:
            grid.figure.savefig(tmp, bbox_inches="tight", dpi=150, format=Path(path).suffix[1:])
    plt.close(grid.figure)


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


def tradeoff_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Clone accuracy along each defense's sweep, one curve per defense, one column per victim ×
    transfer set: against defender accuracy (top row, the papers' trade-off plot) and against
    the effective ε, the mean L1 distance of the answers (bottom row, as in GRAD², ref A §14.5).
    Points are the raw runs in sweep order (no aggregation)."""
    data = df.assign(setting=df["victim"] + " / " + df["transfer"])
    settings = list(dict.fromkeys(data["setting"]))
    defenses = list(dict.fromkeys(data["defense"]))
    palette = dict(zip(defenses, sns.color_palette("tab10", len(defenses)), strict=True))
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(
        2, len(settings), figsize=(3.6 * len(settings) + 1.5, 6.4), squeeze=False, constrained_layout=True
    )
    for col, setting in enumerate(settings):
        part = data[data["setting"] == setting]
        for row, x in enumerate(("defender_acc", "l1_distance")):
            ax = axes[row, col]
            for defense in defenses:
                curve = part[part["defense"] == defense]
                if curve.empty:
                    continue
                ax.plot(curve[x], curve["clone_acc"], marker="o", ms=4, color=palette[defense], label=defense)
            ax.set_xlabel(
                "defender accuracy" if x == "defender_acc" else "effective ε (mean L1 to clean answer)"
            )
            ax.set_ylabel("clone accuracy (KnockoffNets)" if col == 0 else "")
            ax.set_ylim(0, 1.02)
            if row == 0:
                ax.set_title(setting)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="defense", loc="outside right center")
    fig.suptitle("Utility vs. extraction along each defense's sweep")
    for path in (png_path, pdf_path):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", dpi=150, format=Path(path).suffix[1:])
    plt.close(fig)


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


def datafree_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Clone accuracy against defender accuracy, one panel per attack × victim, one marker per
    defense (points of one defense joined in sweep order). Upper left = a defense that keeps
    utility and still gets stolen; the papers' goal is the lower right."""
    data = df.assign(setting=df["attack"] + " / " + df["victim"])
    settings = list(dict.fromkeys(data["setting"]))
    defenses = list(dict.fromkeys(data["defense"]))
    palette = dict(zip(defenses, sns.color_palette("tab10", len(defenses)), strict=True))
    markers = dict(zip(defenses, "osD^vP*Xph<>", strict=False))
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(
        1, len(settings), figsize=(3.6 * len(settings) + 1.5, 3.4), squeeze=False, constrained_layout=True
    )
    for col, setting in enumerate(settings):
        ax = axes[0, col]
        part = data[data["setting"] == setting]
        for defense in defenses:
            curve = part[part["defense"] == defense]
            if curve.empty:
                continue
            ax.plot(
                curve["defender_acc"],
                curve["clone_acc"],
                marker=markers.get(defense, "o"),
                ms=6,
                color=palette[defense],
                label=defense,
            )
        ax.set_xlabel("defender accuracy")
        ax.set_ylabel("clone accuracy (selected on validation)" if col == 0 else "")
        ax.set_ylim(0, 1.02)
        ax.set_title(setting)
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, title="defense", loc="outside right center")
    fig.suptitle("Data-free extraction (DFME / MAZE) against each defended oracle")
    for path in (png_path, pdf_path):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", dpi=150, format=Path(path).suffix[1:])
    plt.close(fig)
