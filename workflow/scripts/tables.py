"""Adapter: rule tables -> msdefense.reporting."""

from msdefense import reporting
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    table = reporting.knockoff_table(list(sm.input))
    reporting.write_table(table[reporting.KNOCKOFF_COLUMNS], sm.output.csv, sm.output.md)
    reporting.write_table(
        reporting.interpolation_table(table), sm.output.interpolation, sm.output.interpolation_md
    )
    reporting.tradeoff_figure(table, sm.output.png, sm.output.pdf)
