"""Adapter: rule datafree_table -> msdefense.reporting."""

from msdefense import reporting
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    table = reporting.datafree_table(list(sm.input))
    reporting.write_table(table, sm.output.csv, sm.output.md)
    reporting.datafree_figure(table, sm.output.png, sm.output.pdf)
