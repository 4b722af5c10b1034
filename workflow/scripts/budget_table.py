"""Adapter: rule budget_table -> msdefense.stages.tables.budget_table."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.tables:budget_table", snakemake)  # noqa: F821  (injected by Snakemake)
