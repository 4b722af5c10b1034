"""Adapter: rule prepare_weights -> msdefense.stages.data.prepare_weights."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.data:prepare_weights", snakemake)  # noqa: F821  (injected by Snakemake)
