"""Adapter: rule train_misinformation -> msdefense.stages.defender_models.train_misinformation."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.defender_models:train_misinformation", snakemake)  # noqa: F821  (injected by Snakemake)
