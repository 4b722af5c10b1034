"""Adapter: rule build_ensemble -> msdefense.stages.victims.build_ensemble."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.victims:build_ensemble", snakemake)  # noqa: F821  (injected by Snakemake)
