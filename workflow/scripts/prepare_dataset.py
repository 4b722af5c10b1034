"""Adapter: rule prepare_dataset -> msdefense.stages.data.prepare_dataset."""

from msdefense.stages.context import run_rule
from msdefense.stages.data import prepare_dataset

run_rule(prepare_dataset, snakemake)  # noqa: F821  (injected by Snakemake)
