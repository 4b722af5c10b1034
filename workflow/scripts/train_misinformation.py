"""Adapter: rule train_misinformation -> msdefense.stages.defender_models.train_misinformation."""

from msdefense.stages.context import run_rule
from msdefense.stages.defender_models import train_misinformation

run_rule(train_misinformation, snakemake)  # noqa: F821  (injected by Snakemake)
