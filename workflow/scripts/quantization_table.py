"""Adapter: rule quantization_table -> msdefense.stages.tables.quantization_table."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import quantization_table

run_rule(quantization_table, snakemake)  # noqa: F821  (injected by Snakemake)
