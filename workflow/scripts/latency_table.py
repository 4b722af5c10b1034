"""Adapter: rule latency_table -> msdefense.stages.tables.latency_table."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import latency_table

run_rule(latency_table, snakemake)  # noqa: F821  (injected by Snakemake)
