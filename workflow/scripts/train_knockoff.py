"""Adapter: rule train_knockoff -> msdefense.stages.attacks.train_knockoff."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.attacks:train_knockoff", snakemake)  # noqa: F821  (injected by Snakemake)
