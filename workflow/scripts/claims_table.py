"""Adapter: rule claims -> msdefense.stages.tables.claims."""

from msdefense.stages.context import run_rule
from msdefense.stages.tables import claims

run_rule(claims, snakemake)  # noqa: F821  (injected by Snakemake)
