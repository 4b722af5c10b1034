"""Adapter: rule train_surrogate -> msdefense.stages.defender_models.train_surrogate."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.defender_models:train_surrogate", snakemake)  # noqa: F821  (injected by Snakemake)
