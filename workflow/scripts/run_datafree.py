"""Adapter: rule run_datafree -> msdefense.stages.attacks.run_datafree."""

from msdefense.stages.attacks import run_datafree
from msdefense.stages.context import run_rule

run_rule(run_datafree, snakemake)  # noqa: F821  (injected by Snakemake)
