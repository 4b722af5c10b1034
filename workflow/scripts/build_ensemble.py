"""Adapter: rule build_ensemble -> msdefense.stages.victims.build_ensemble."""

from msdefense.stages.context import run_rule
from msdefense.stages.victims import build_ensemble

run_rule(build_ensemble, snakemake)  # noqa: F821  (injected by Snakemake)
