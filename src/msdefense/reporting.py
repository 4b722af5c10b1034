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
    """Clone accuracy along each defense's sweep, one curve per defense, one column per victim ×
    transfer set: against defender accuracy (top row, the papers' trade-off plot) and against
    the effective ε, the mean L1 distance of the answers (bottom row, as in GRAD², ref A §14.5).
    Points are the raw runs in sweep order (no aggregation)."""
    data = df.assign(setting=df["victim"] + " / " + df["transfer"])
    settings = list(dict.fromkeys(data["setting"]))
    defenses = list(dict.fromkeys(data["defense"]))
    palette = dict(zip(defenses, sns.color_palette("colorblind", len(defenses)), strict=True))
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
