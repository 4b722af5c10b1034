"""Adapter: rule train_victim -> msdefense.stages.victims.train_victim."""

from msdefense.stages.context import run_rule
from msdefense.stages.victims import train_victim

run_rule(train_victim, snakemake)  # noqa: F821  (injected by Snakemake)
