"""Adapter: rule run_datafree -> msdefense.stages.attacks.run_datafree."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.attacks:run_datafree", snakemake)  # noqa: F821  (injected by Snakemake)
