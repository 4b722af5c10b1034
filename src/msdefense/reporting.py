"""Tables and figures of the papers, built from the per-run metrics records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
]


def knockoff_table(metric_paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per victim × transfer set × defense × ε, accuracies as fractions in [0, 1]."""
    rows = [load_json(p) for p in metric_paths]
    if not rows:
        raise ValueError("no KnockoffNets metrics to tabulate")
    df = pd.DataFrame(rows)
    missing = [c for c in KNOCKOFF_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"metrics records lack the columns {missing}")
    df["param_value"] = df["param"].astype(float)
    df = df.sort_values(["victim", "transfer", "defense", "param_value"], kind="stable")
    return df[KNOCKOFF_COLUMNS].reset_index(drop=True)


def to_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (floats rounded to ``digits``)."""
    cells = [
        [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(False)
    ]
    header = "| " + " | ".join(df.columns) + " |"
    rule = (
        "|"
        + "|".join(" ---: " if pd.api.types.is_numeric_dtype(df[c]) else " --- " for c in df.columns)
        + "|"
    )
    return "\n".join([header, rule, *("| " + " | ".join(r) + " |" for r in cells)]) + "\n"


def write_table(df: pd.DataFrame, csv_path: str | Path, md_path: str | Path) -> None:
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(df))


def tradeoff_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Defender accuracy (x) vs clone accuracy (y), one curve per defense along its ε sweep;
    one panel per victim × transfer set."""
    data = df.assign(setting=df["victim"] + " / " + df["transfer"])
    sns.set_theme(style="whitegrid", context="paper")
    grid = sns.relplot(
        data=data,
        x="defender_acc",
        y="clone_acc",
        hue="defense",
        col="setting",
        kind="line",
        sort=False,
        marker="o",
        col_wrap=min(3, data["setting"].nunique()),
        height=3.2,
        aspect=1.1,
        facet_kws={"sharex": False, "sharey": False},
    )
    grid.set_axis_labels("defender accuracy", "clone accuracy (KnockoffNets)")
    grid.set_titles("{col_name}")
    grid.figure.suptitle("Utility vs. extraction along each defense's sweep", y=1.03)
    for path in (png_path, pdf_path):
        with atomic_path(path) as tmp:
            grid.figure.savefig(tmp, bbox_inches="tight", dpi=150, format=Path(path).suffix[1:])
    plt.close(grid.figure)
