"""Adapter: rule quantization_table -> msdefense.reporting."""

from msdefense import reporting
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    table = reporting.quantization_table(list(sm.input.victims), list(sm.input.latency))
    reporting.write_table(table, sm.output.csv, sm.output.md)
