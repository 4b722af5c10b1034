"""Adapter: rule answer_queries -> msdefense.stages.answers.answer_queries."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.answers:answer_queries", snakemake)  # noqa: F821  (injected by Snakemake)
