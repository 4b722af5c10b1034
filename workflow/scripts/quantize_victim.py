"""Adapter: rule quantize_victim -> msdefense.stages.victims.quantize_victim."""

from msdefense.stages.context import run_rule
from msdefense.stages.victims import quantize_victim

run_rule(quantize_victim, snakemake)  # noqa: F821  (injected by Snakemake)
