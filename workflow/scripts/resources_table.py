"""Adapter: rule resources_table -> msdefense.stages.tables.resources."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import resources

run_rule(resources, snakemake)  # noqa: F821  (injected by Snakemake)
