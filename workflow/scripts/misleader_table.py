"""Adapter: rule misleader_table -> msdefense.stages.tables.misleader_table."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import misleader_table

run_rule(misleader_table, snakemake)  # noqa: F821  (injected by Snakemake)
