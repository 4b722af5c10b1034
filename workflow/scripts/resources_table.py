"""Adapter: rule resources_table -> msdefense.stages.tables.resources."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.tables:resources", snakemake)  # noqa: F821  (injected by Snakemake)
