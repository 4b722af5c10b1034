"""Stages of ``rules/tables.smk``: every table and figure from the metrics records.

Each table of per-run results is written twice: ``tables/<name>_seeds.csv`` with one row per
seed, and ``tables/<name>.{csv,md}`` with the mean over seeds, ``n_seeds`` and 95% intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import reporting


@dataclass(frozen=True, kw_only=True)
class TableOutputs:
    out_csv: str
    out_md: str


@dataclass(frozen=True, kw_only=True)
class SeedTableOutputs(TableOutputs):
    out_seeds: str


@dataclass(frozen=True, kw_only=True)
class FigureOutputs:
    out_png: str
    out_pdf: str


@dataclass(frozen=True, kw_only=True)
class KnockoffTablesRequest(SeedTableOutputs, FigureOutputs):
    in_metrics: Sequence[str]
    out_interpolation: str
    out_interpolation_md: str
    out_interpolation_seeds: str


def _paths(value: str | Sequence[str]) -> list[str]:
    """A rule's list input or output (a one-item list may come as its item)."""
    return [value] if isinstance(value, str) else list(value)


def _write_seeded(per_seed, summary, seeds_path: str, csv_path: str, md_path: str) -> None:
    """A per-run table's two files: its per-seed rows and its summary over seeds."""
    reporting.write_csv(per_seed, seeds_path)
    reporting.write_table(summary, csv_path, md_path)


def knockoff_tables(request: KnockoffTablesRequest) -> None:
    """The KnockoffNets table, the GRAD² interpolation table and the trade-off figure."""
    r = request
    per_seed = reporting.knockoff_seeds(list(r.in_metrics))
    table = reporting.knockoff_table(per_seed)
    _write_seeded(per_seed, table, r.out_seeds, r.out_csv, r.out_md)
    interpolation = reporting.interpolation_seeds(per_seed)
    _write_seeded(
        interpolation,
        reporting.interpolation_table(interpolation),
        r.out_interpolation_seeds,
        r.out_interpolation,
        r.out_interpolation_md,
    )
    reporting.tradeoff_figure(table, r.out_png, r.out_pdf)


@dataclass(frozen=True, kw_only=True)
class FigureTableRequest(TableOutputs, FigureOutputs):
    in_metrics: Sequence[str]


@dataclass(frozen=True, kw_only=True)
class SeedFigureTableRequest(SeedTableOutputs, FigureOutputs):
    in_metrics: Sequence[str]


def latency_table(request: FigureTableRequest) -> None:
    """Latency table (ms per query, overhead vs the undefended pass, slowdown vs DCP) and figure."""
    table = reporting.latency_table(list(request.in_metrics))
    reporting.write_table(table, request.out_csv, request.out_md)
    reporting.latency_figure(table, request.out_png, request.out_pdf)


def datafree_table(request: SeedFigureTableRequest) -> None:
    """The DFME / MAZE table and its trade-off figure."""
    r = request
    per_seed = reporting.datafree_seeds(list(r.in_metrics))
    table = reporting.datafree_table(per_seed)
    _write_seeded(per_seed, table, r.out_seeds, r.out_csv, r.out_md)
    reporting.datafree_figure(table, r.out_png, r.out_pdf)


@dataclass(frozen=True, kw_only=True)
class BudgetTableRequest(SeedTableOutputs):
    in_knockoff: Sequence[str]
    in_budgets: Sequence[str]
    in_datafree: Sequence[str]
    in_histories: Sequence[str]
    victims: Sequence[str]
    out_curves: str
    out_curves_md: str
    out_png: Sequence[str]
    out_pdf: Sequence[str]


def budget_table(request: BudgetTableRequest) -> None:
    """The budget curves (:mod:`msdefense.reporting.budgets`): per-seed points, the curves over
    the seeds, one row per curve, and one figure per victim."""
    import pandas as pd

    from ..reporting import budgets
    from ..reporting.figures import budget_figure

    r = request
    points = [budgets.knockoff_points(_paths(r.in_knockoff), _paths(r.in_budgets))]
    if r.in_datafree:
        points.append(budgets.datafree_points(_paths(r.in_datafree), _paths(r.in_histories)))
    per_seed = budgets.budget_seeds(pd.concat(points, ignore_index=True))
    curves = budgets.budget_curves(per_seed)
    reporting.write_csv(per_seed, r.out_seeds)
    reporting.write_table(curves, r.out_curves, r.out_curves_md)
    reporting.write_table(budgets.budget_table(per_seed, curves), r.out_csv, r.out_md)
    for victim, png, pdf in zip(_paths(r.victims), _paths(r.out_png), _paths(r.out_pdf), strict=True):
        budget_figure(curves, victim, png, pdf)


@dataclass(frozen=True, kw_only=True)
class QuantizationTableRequest(SeedTableOutputs):
    in_victims: Sequence[str]
    in_latency: Sequence[str]


def quantization_table(request: QuantizationTableRequest) -> None:
    """fp32 vs int8 victims: accuracy, weight size, ms per query."""
    r = request
    per_seed = reporting.quantization_seeds(list(r.in_victims), list(r.in_latency))
    _write_seeded(per_seed, reporting.quantization_table(per_seed), r.out_seeds, r.out_csv, r.out_md)


@dataclass(frozen=True, kw_only=True)
class MisleaderTableRequest(SeedTableOutputs, FigureOutputs):
    in_ensembles: Sequence[str]
    in_knockoff: Sequence[str]
    in_datafree: Sequence[str] = ()


def misleader_table(request: MisleaderTableRequest) -> None:
    """MISLEADER's Table B and its figure."""
    r = request
    knockoff = reporting.knockoff_seeds(list(r.in_knockoff))
    datafree = reporting.datafree_seeds(list(r.in_datafree)) if r.in_datafree else None
    per_seed = reporting.misleader_seeds(list(r.in_ensembles), knockoff, datafree)
    table = reporting.misleader_table(per_seed)
    _write_seeded(per_seed, table, r.out_seeds, r.out_csv, r.out_md)
    reporting.misleader_figure(table, r.out_png, r.out_pdf)


@dataclass(frozen=True, kw_only=True)
class ClaimsRequest(TableOutputs):
    in_knockoff: str
    in_interpolation: str
    in_latency: str
    # a table the experiment does not make is an empty input list
    in_datafree: str | Sequence[str] = ()
    in_misleader: str | Sequence[str] = ()
    in_quantization: str | Sequence[str] = ()


def _optional_table(paths: str | Sequence[str]):
    if not paths:
        return None
    return reporting.read_table(paths if isinstance(paths, str) else paths[0])


def claims(request: ClaimsRequest) -> None:
    """The verdict per claim of the two papers (``tables/claims``) from the per-seed tables."""
    r = request
    quantization = _optional_table(r.in_quantization)
    quantized = (
        []
        if quantization is None
        else list(dict.fromkeys(quantization.loc[quantization["precision"] == "int8", "victim"]))
    )
    table = reporting.claims_table(
        knockoff=reporting.read_table(r.in_knockoff),
        interpolation=reporting.read_table(r.in_interpolation),
        latency=reporting.read_table(r.in_latency),
        datafree=_optional_table(r.in_datafree),
        misleader=_optional_table(r.in_misleader),
        quantized=quantized,
    )
    reporting.write_table(table, r.out_csv, r.out_md)


@dataclass(frozen=True, kw_only=True)
class ResourcesRequest(TableOutputs):
    in_tables: Sequence[str]  # every other table: this one is made last, when every job's benchmark is there


def resources(request: ResourcesRequest) -> None:
    """Seconds and peak memory of every job of the run (``tables/resources``)."""
    from ..reporting.resources import resources_table

    results = Path(request.out_csv).parents[1]  # layout.TABLE: <results>/tables/<name>.<ext>
    reporting.write_table(resources_table(results), request.out_csv, request.out_md)


@dataclass(frozen=True, kw_only=True)
class LeaderboardRequest(TableOutputs, FigureOutputs):
    experiment: str
    datasets: dict[str, str]  # victim -> dataset
    in_knockoff: str
    in_interpolation: str
    in_latency: str
    in_datafree: Sequence[str] = ()
    in_budgets: Sequence[str] = ()
    out_results: str


def leaderboard(request: LeaderboardRequest) -> None:
    """The results bundle (``tables/results.csv``: one row per attack outcome and seed) and the
    leaderboard (``tables/leaderboard``, ``figures/leaderboard``): :mod:`msdefense.reporting.leaderboard`."""
    from ..reporting import leaderboard as board
    from ..reporting.figures import leaderboard_figure

    r = request
    knockoff, latency = reporting.read_table(r.in_knockoff), reporting.read_table(r.in_latency)
    bundle = board.results_bundle(
        experiment=r.experiment,
        datasets=dict(r.datasets),
        knockoff=knockoff,
        datafree=_optional_table(r.in_datafree),
        budgets=_optional_table(r.in_budgets),
        latency=latency,
    )
    reporting.write_csv(bundle, r.out_results)
    table = board.leaderboard(reporting.read_table(r.in_interpolation), knockoff, latency)
    reporting.write_table(table, r.out_csv, r.out_md)
    leaderboard_figure(table, r.out_png, r.out_pdf)
