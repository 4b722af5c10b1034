"""Adapter: rule quantization_table -> msdefense.stages.tables.quantization_table."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.tables:quantization_table", snakemake)  # noqa: F821  (injected by Snakemake)
