"""Adapter: rule train_knockoff -> msdefense.stages.attacks.train_knockoff."""

from msdefense.stages.attacks import train_knockoff
from msdefense.stages.context import run_rule

run_rule(train_knockoff, snakemake)  # noqa: F821  (injected by Snakemake)
