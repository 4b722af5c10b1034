"""Adapter: rule prepare_weights -> msdefense.stages.data.prepare_weights."""

from msdefense.stages.context import run_rule
from msdefense.stages.data import prepare_weights

run_rule(prepare_weights, snakemake)  # noqa: F821  (injected by Snakemake)
