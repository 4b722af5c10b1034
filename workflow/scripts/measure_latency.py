"""Adapter: rule measure_latency -> msdefense.stages.latency.measure_latency."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.latency:measure_latency", snakemake)  # noqa: F821  (injected by Snakemake)
