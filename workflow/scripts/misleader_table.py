"""Adapter: rule misleader_table -> msdefense.reporting."""

from msdefense import reporting
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    knockoff = reporting.knockoff_table(list(sm.input.knockoff))
    datafree = reporting.datafree_table(list(sm.input.datafree)) if sm.input.datafree else None
    table = reporting.misleader_table(list(sm.input.ensembles), knockoff, datafree)
    reporting.write_table(table, sm.output.csv, sm.output.md)
    reporting.misleader_figure(table, sm.output.png, sm.output.pdf)
