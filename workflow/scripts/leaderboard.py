"""Adapter: rule leaderboard -> msdefense.stages.tables.leaderboard."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.tables:leaderboard", snakemake)  # noqa: F821  (injected by Snakemake)
