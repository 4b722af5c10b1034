"""The papers' figures, drawn from the tables of :mod:`msdefense.reporting.tables`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, *paths: str | Path) -> None:
    """Write ``fig`` to each path (format from the suffix) atomically, then close it."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", dpi=150, format=Path(path).suffix[1:])
    plt.close(fig)


def _errors(rows: pd.DataFrame, metric: str) -> list[list[float]] | None:
    """Matplotlib ``yerr`` / ``xerr`` from a summary's ``<metric>_ci_low`` / ``_ci_high`` (none
    where the table has one seed)."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low not in rows or rows[low].isna().all():
        return None
    mean = rows[metric].to_numpy()
    return [list(mean - rows[low].to_numpy()), list(rows[high].to_numpy() - mean)]


def _seeds_note(df: pd.DataFrame) -> str:
    n = sorted(set(df["n_seeds"])) if "n_seeds" in df else [1]
    seeds = "/".join(map(str, n))
    return f"mean over {seeds} seed(s), bars: 95% t-interval" if max(n) > 1 else "one seed (no interval)"


#: the widest a figure's panels may make it (inches, about a page at 150 dpi), and its columns
PAGE_WIDTH, MAX_COLUMNS = 11.0, 3


def panel_grid(
    n: int, *, width: float, height: float, rows_each: int = 1
) -> tuple[plt.Figure, list[list[plt.Axes]]]:
    """``n`` panel groups wrapped into a grid at most :data:`MAX_COLUMNS` wide (and no wider than
    :data:`PAGE_WIDTH`), each group ``rows_each`` panels stacked; returns the figure and, per
    group, its axes. Unused axes are hidden."""
    cols = max(1, min(n, MAX_COLUMNS, int(PAGE_WIDTH // width) or 1))
    rows = -(-max(n, 1) // cols)
    fig, axes = plt.subplots(
        rows * rows_each,
        cols,
        figsize=(min(PAGE_WIDTH, width * cols), height * rows * rows_each),
        squeeze=False,
        constrained_layout=True,
    )
    groups = [[axes[(i // cols) * rows_each + k, i % cols] for k in range(rows_each)] for i in range(n)]
    used = {id(ax) for group in groups for ax in group}
    for ax in axes.flat:
        if id(ax) not in used:
            ax.set_visible(False)
    return fig, groups


def _figure_legend(fig: plt.Figure, **options: object) -> None:
    """One legend below the panels for every label any panel drew (first handle of each label)."""
    legend: dict = {}
    for ax in fig.axes:
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    fig.legend(
        list(legend.values()), list(legend), loc="outside lower center", ncol=min(5, len(legend)), **options
    )


def latency_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Overhead over the undefended pass per defense (log scale), per victim and batch size, with
    the 95% interval of each ratio; hatched bars are rows whose interval stayed wider than the
    configured half-width (``reliable`` false: remeasure on a quiet machine)."""
    sns.set_theme(style="whitegrid", context="paper")
    victims = list(dict.fromkeys(df["victim"]))
    batches = sorted(df["batch_size"].unique())
    defenses = list(dict.fromkeys(df["defense"]))
    fig, groups = panel_grid(len(victims), width=4.8, height=3.4)
    width = 0.8 / len(batches)
    colours = sns.color_palette(n_colors=len(batches))
    for (ax,), victim in zip(groups, victims, strict=True):
        rows = df[df["victim"] == victim].set_index(["defense", "batch_size"])
        for j, (batch, colour) in enumerate(zip(batches, colours, strict=True)):
            for i, defense in enumerate(defenses):
                if (defense, batch) not in rows.index:
                    continue
                r = rows.loc[(defense, batch)]
                ratio, low, high = r["overhead_vs_none"], r["overhead_ci_low"], r["overhead_ci_high"]
                ax.bar(
                    i + (j - (len(batches) - 1) / 2) * width,
                    ratio,
                    width,
                    color=colour,
                    hatch="" if bool(r["reliable"]) else "///",
                    edgecolor="0.2",
                    yerr=[[ratio - low], [high - ratio]],
                    capsize=2,
                    label=f"batch {batch}" if i == 0 else None,
                )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g×"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_xticks(range(len(defenses)), defenses, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_title(victim)
        ax.set_ylabel("time per query / undefended")
    fig.legend(
        *groups[0][0].get_legend_handles_labels(),
        title="hatched: interval too wide",
        loc="outside lower center",
        ncol=len(batches),
        fontsize="small",
        title_fontsize="small",
    )
    save_figure(fig, png_path, pdf_path)


def tradeoff_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Clone accuracy along each defense's sweep, one curve per defense, one column per victim ×
    transfer set × label kind: against defender accuracy (top row, the papers' trade-off plot) and against
    the effective ε, the mean L1 distance of the answers (bottom row, as in Mazeika et al. 2022, GRAD², ICML).
    ``df`` is the summary over seeds: points are the means in sweep order, bars the 95% intervals
    of both coordinates."""
    data = df.assign(setting=df["victim"] + " / " + df["transfer"] + " / " + df["labels"] + " labels")
    settings = list(dict.fromkeys(data["setting"]))
    defenses = list(dict.fromkeys(data["defense"]))
    palette = dict(zip(defenses, sns.color_palette("tab10", len(defenses)), strict=True))
    sns.set_theme(style="whitegrid", context="paper")
    fig, groups = panel_grid(len(settings), width=3.6, height=3.0, rows_each=2)
    for group, setting in zip(groups, settings, strict=True):
        part = data[data["setting"] == setting]
        for row, x in enumerate(("defender_acc", "l1_distance")):
            ax = group[row]
            for defense in defenses:
                curve = part[part["defense"] == defense]
                if curve.empty:
                    continue
                ax.errorbar(
                    curve[x],
                    curve["clone_acc"],
                    xerr=_errors(curve, x),
                    yerr=_errors(curve, "clone_acc"),
                    marker="o",
                    ms=4,
                    capsize=2,
                    color=palette[defense],
                    label=defense,
                )
            ax.set_xlabel(
                "defender accuracy" if x == "defender_acc" else "effective ε (mean L1 to clean answer)"
            )
            ax.set_ylabel("clone accuracy (KnockoffNets)")
            ax.set_ylim(0, 1.02)
            if row == 0:
                ax.set_title(setting.replace(" / ", "\n", 1), fontsize="small")
    _figure_legend(fig, title="defense")  # every panel's defenses (argmax panels may hold fewer)
    fig.suptitle(f"Utility vs. extraction along each defense's sweep ({_seeds_note(df)})")
    save_figure(fig, png_path, pdf_path)


def datafree_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Clone accuracy against defender accuracy, one panel per attack × victim, one marker per
    defense (points of one defense joined in sweep order; means over seeds with 95% intervals).
    Upper left = a defense that keeps utility and still gets stolen; the papers' goal is the lower right."""
    data = df.assign(setting=df["attack"] + " / " + df["victim"])
    settings = list(dict.fromkeys(data["setting"]))
    defenses = list(dict.fromkeys(data["defense"]))
    palette = dict(zip(defenses, sns.color_palette("tab10", len(defenses)), strict=True))
    markers = dict(zip(defenses, "osD^vP*Xph<>", strict=False))
    sns.set_theme(style="whitegrid", context="paper")
    fig, groups = panel_grid(len(settings), width=3.6, height=3.2)
    for (ax,), setting in zip(groups, settings, strict=True):
        part = data[data["setting"] == setting]
        for defense in defenses:
            curve = part[part["defense"] == defense]
            if curve.empty:
                continue
            ax.errorbar(
                curve["defender_acc"],
                curve["clone_acc"],
                xerr=_errors(curve, "defender_acc"),
                yerr=_errors(curve, "clone_acc"),
                capsize=2,
                marker=markers.get(defense, "o"),
                ms=6,
                color=palette[defense],
                label=defense,
            )
        ax.set_xlabel("defender accuracy")
        ax.set_ylabel("clone accuracy (selected on validation)")
        ax.set_ylim(0, 1.02)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
        ax.set_title(setting, fontsize="small")
    _figure_legend(fig, title="defense")
    fig.suptitle(f"Data-free extraction (DFME / MAZE) against each defended oracle ({_seeds_note(df)})")
    save_figure(fig, png_path, pdf_path)


def misleader_figure(df: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Clone accuracy per Table-B row (means over seeds, 95% intervals), grouped by attack, one
    panel per dataset; hatched bars are baselines that could not be matched to MISLEADER's
    defended accuracy (no bar) or only at a setting above it (``within``)."""
    sns.set_theme(style="whitegrid", context="paper")
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, groups = panel_grid(len(datasets), width=7.5, height=3.8)
    for (ax,), dataset in zip(groups, datasets, strict=True):
        part = df[df["dataset"] == dataset]
        rows = list(dict.fromkeys(part["row"]))
        attacks = list(dict.fromkeys(part["attack"]))
        width = 0.8 / len(attacks)
        colours = sns.color_palette(n_colors=len(attacks))
        for j, (attack, colour) in enumerate(zip(attacks, colours, strict=True)):
            bars = part[part["attack"] == attack].set_index("row").reindex(rows)
            err = _errors(bars, "clone_acc")
            ax.bar(
                [i + (j - (len(attacks) - 1) / 2) * width for i in range(len(rows))],
                bars["clone_acc"].fillna(0.0),
                width,
                color=colour,
                edgecolor="0.2",
                hatch=None,
                yerr=None if err is None else [[v if v == v else 0.0 for v in e] for e in err],
                capsize=2,
                label=attack,
            )
            for i, match in enumerate(bars["match"].fillna("unmatched")):
                if match not in ("-", "interpolated"):
                    x = i + (j - (len(attacks) - 1) / 2) * width
                    ax.bar(x, bars["clone_acc"].fillna(0.0).iloc[i], width, fill=False, hatch="///", lw=0)
        ax.set_xticks(range(len(rows)), rows, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("clone accuracy")
        ax.set_title(f"{dataset}: clone accuracy at MISLEADER's defended accuracy ({_seeds_note(part)})")
    handles, labels = groups[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        title="attack (hatched: not matched exactly)",
        loc="outside right center",
        fontsize="small",
        title_fontsize="small",
    )
    save_figure(fig, png_path, pdf_path)


def budget_figure(curves: pd.DataFrame, victim: str, png_path: str | Path, pdf_path: str | Path) -> None:
    """One victim's budget curves (:mod:`.budgets`): clone accuracy against oracle queries (log
    axis), one panel per attack (and transfer set), one line per defense at its strongest swept
    value (:func:`msdefense.sweeps.strength`), bands the 95% intervals over the seeds; the dotted
    line is the undefended victim's mean test accuracy."""
    from .claim_inputs import strengths

    data = curves[curves["victim"] == victim]
    data = data.assign(
        panel=data["attack"].where(data["transfer"] == "-", data["attack"] + " / " + data["transfer"]),
        _s=strengths(data),
    )
    panels = list(dict.fromkeys(data["panel"]))
    defenses = list(dict.fromkeys(curves["defense"]))
    palette = dict(zip(defenses, sns.color_palette("tab10", len(defenses)), strict=True))
    sns.set_theme(style="whitegrid", context="paper")
    fig, groups = panel_grid(len(panels), width=3.6, height=3.0)
    for (ax,), panel in zip(groups, panels, strict=True):
        part = data[data["panel"] == panel]
        for defense in defenses:
            runs = part[part["defense"] == defense]
            if runs.empty:
                continue
            curve = runs[runs["_s"] == runs["_s"].max()].sort_values("queries")
            label = defense if curve["method"].iloc[0] == "None" else f"{defense} {curve['param'].iloc[0]}"
            ax.plot(
                curve["queries"], curve["clone_acc"], marker="o", ms=3, color=palette[defense], label=label
            )
            if "clone_acc_ci_low" in curve and curve["clone_acc_ci_low"].notna().any():
                ax.fill_between(
                    curve["queries"],
                    curve["clone_acc_ci_low"],
                    curve["clone_acc_ci_high"],
                    color=palette[defense],
                    alpha=0.15,
                )
        if part["victim_acc"].notna().any():
            ax.axhline(part["victim_acc"].mean(), color="0.3", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_title(panel)
        ax.set_xlabel("oracle queries")
        ax.set_ylabel("clone test accuracy")
    _figure_legend(fig, fontsize="small")
    n = sorted(set(data["n_seeds"])) if "n_seeds" in data else [1]
    spread = "bands: 95% intervals" if max(n) > 1 else "one seed, no interval"
    fig.suptitle(
        f"{victim}: clone accuracy against the attacker's budget (mean over {'/'.join(map(str, n))} seeds; {spread})"
    )
    save_figure(fig, png_path, pdf_path)


def leaderboard_figure(table: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """The leaderboard (:mod:`.leaderboard`): per victim and query set (panels wrapped, at most
    :data:`MAX_COLUMNS` to a row), the defenses' worst-case clone accuracy within the utility
    margin, best defense on top, 95% intervals clipped to [0, 1]; the undefended victim's bar is
    grey and each label carries the latency ratio to the undefended pass."""
    groups = list(dict.fromkeys(zip(table["victim"], table["transfer"], strict=True)))
    height = max(2.0, 0.32 * table.groupby(["victim", "transfer"]).size().max() + 1.0)
    sns.set_theme(style="whitegrid", context="paper")
    fig, panels = panel_grid(len(groups), width=5.4, height=height)
    for (ax,), (victim, transfer) in zip(panels, groups, strict=True):
        part = table[(table["victim"] == victim) & (table["transfer"] == transfer)].sort_values("rank")
        labels = [
            (d if d == "undefended" else f"{d} {p:.3g}") + (f" ({r:.2f}×)" if pd.notna(r) else "")
            for d, p, r in zip(part["defense"], part["param"], part["latency_ratio"], strict=True)
        ]
        colors = ["0.6" if d == "undefended" else sns.color_palette("tab10")[0] for d in part["defense"]]
        y = list(range(len(part)))[::-1]
        ax.barh(y, part["clone_acc"], color=colors, xerr=_errors(part, "clone_acc"), capsize=2)
        ax.set_yticks(y, labels, fontsize="small")
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("worst-case clone accuracy (lower is better)")
        ax.set_title(f"{victim} / {transfer}", fontsize="small")
    margin = table["utility_margin"].iloc[0] * 100 if "utility_margin" in table else float("nan")
    fig.suptitle(
        f"Defenses at ≤ {margin:g} point of accuracy cost ({_seeds_note(table)}; label: value, latency ratio)",
        fontsize="small",
    )
    save_figure(fig, png_path, pdf_path)
