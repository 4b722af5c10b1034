"""Adapter: rule tables -> msdefense.stages.tables.knockoff_tables."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import knockoff_tables

run_rule(knockoff_tables, snakemake)  # noqa: F821  (injected by Snakemake)
