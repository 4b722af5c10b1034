"""Adapter: rule train_misleader_member -> msdefense.stages.victims.train_misleader_member."""

from msdefense.stages.context import run_rule
from msdefense.stages.victims import train_misleader_member

run_rule(train_misleader_member, snakemake)  # noqa: F821  (injected by Snakemake)
