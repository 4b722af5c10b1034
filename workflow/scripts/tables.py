"""Adapter: rule tables -> msdefense.stages.tables.knockoff_tables."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.tables:knockoff_tables", snakemake)  # noqa: F821  (injected by Snakemake)
