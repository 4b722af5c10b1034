"""Adapter: rule answer_queries -> msdefense.stages.answers.answer_queries."""

from msdefense.stages.answers import answer_queries
from msdefense.stages.context import run_rule

run_rule(answer_queries, snakemake)  # noqa: F821  (injected by Snakemake)
