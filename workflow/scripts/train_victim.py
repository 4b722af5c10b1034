"""Adapter: rule train_victim -> msdefense.stages.victims.train_victim."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.victims:train_victim", snakemake)  # noqa: F821  (injected by Snakemake)
