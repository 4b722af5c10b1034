"""Adapter: rule prepare_dataset -> msdefense.stages.data.prepare_dataset."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.data:prepare_dataset", snakemake)  # noqa: F821  (injected by Snakemake)
