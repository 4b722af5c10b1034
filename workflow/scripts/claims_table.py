"""Adapter: rule claims -> msdefense.stages.tables.claims."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.tables:claims", snakemake)  # noqa: F821  (injected by Snakemake)
