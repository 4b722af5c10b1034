"""Stages of ``rules/tables.smk``: every table and figure from the metrics records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import reporting


@dataclass(frozen=True, kw_only=True)
class TableOutputs:
    out_csv: str
    out_md: str


@dataclass(frozen=True, kw_only=True)
class FigureOutputs:
    out_png: str
    out_pdf: str


@dataclass(frozen=True, kw_only=True)
class KnockoffTablesRequest(TableOutputs, FigureOutputs):
    in_metrics: Sequence[str]
    out_interpolation: str
    out_interpolation_md: str


def knockoff_tables(request: KnockoffTablesRequest) -> None:
    """The KnockoffNets table, the GRAD² interpolation table and the trade-off figure."""
    r = request
    table = reporting.knockoff_table(list(r.in_metrics))
    reporting.write_table(table[reporting.KNOCKOFF_COLUMNS], r.out_csv, r.out_md)
    reporting.write_table(reporting.interpolation_table(table), r.out_interpolation, r.out_interpolation_md)
    reporting.tradeoff_figure(table, r.out_png, r.out_pdf)


@dataclass(frozen=True, kw_only=True)
class FigureTableRequest(TableOutputs, FigureOutputs):
    in_metrics: Sequence[str]


def latency_table(request: FigureTableRequest) -> None:
    """Latency table (ms per query, overhead vs the undefended pass, slowdown vs DCP) and figure."""
    table = reporting.latency_table(list(request.in_metrics))
    reporting.write_table(table, request.out_csv, request.out_md)
    reporting.latency_figure(table, request.out_png, request.out_pdf)


def datafree_table(request: FigureTableRequest) -> None:
    """The DFME / MAZE table and its trade-off figure."""
    table = reporting.datafree_table(list(request.in_metrics))
    reporting.write_table(table, request.out_csv, request.out_md)
    reporting.datafree_figure(table, request.out_png, request.out_pdf)


@dataclass(frozen=True, kw_only=True)
class QuantizationTableRequest(TableOutputs):
    in_victims: Sequence[str]
    in_latency: Sequence[str]


def quantization_table(request: QuantizationTableRequest) -> None:
    """fp32 vs int8 victims: accuracy, weight size, ms per query."""
    table = reporting.quantization_table(list(request.in_victims), list(request.in_latency))
    reporting.write_table(table, request.out_csv, request.out_md)


@dataclass(frozen=True, kw_only=True)
class MisleaderTableRequest(TableOutputs, FigureOutputs):
    in_ensembles: Sequence[str]
    in_knockoff: Sequence[str]
    in_datafree: Sequence[str] = ()


def misleader_table(request: MisleaderTableRequest) -> None:
    """MISLEADER's Table B and its figure."""
    r = request
    knockoff = reporting.knockoff_table(list(r.in_knockoff))
    datafree = reporting.datafree_table(list(r.in_datafree)) if r.in_datafree else None
    table = reporting.misleader_table(list(r.in_ensembles), knockoff, datafree)
    reporting.write_table(table, r.out_csv, r.out_md)
    reporting.misleader_figure(table, r.out_png, r.out_pdf)
