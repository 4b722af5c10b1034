"""Adapter: rule train_misleader_member -> msdefense.stages.victims.train_misleader_member."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.victims:train_misleader_member", snakemake)  # noqa: F821  (injected by Snakemake)
