"""Adapter: rule datafree_table -> msdefense.stages.tables.datafree_table."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import datafree_table

run_rule(datafree_table, snakemake)  # noqa: F821  (injected by Snakemake)
