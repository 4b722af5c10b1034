"""Adapter: rule train_surrogate -> msdefense.stages.defender_models.train_surrogate."""

from msdefense.stages.context import run_rule
from msdefense.stages.defender_models import train_surrogate

run_rule(train_surrogate, snakemake)  # noqa: F821  (injected by Snakemake)
