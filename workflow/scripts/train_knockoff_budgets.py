"""Adapter: rule train_knockoff_budgets -> msdefense.stages.budgets.train_knockoff_budgets."""

from msdefense.jobclient import run_job  # in a fork of the run's job server when there is one

run_job("msdefense.stages.budgets:train_knockoff_budgets", snakemake)  # noqa: F821  (injected by Snakemake)
