"""Adapter: rule measure_latency -> msdefense.stages.latency.measure_latency."""

from msdefense.stages.context import run_rule
from msdefense.stages.latency import measure_latency

run_rule(measure_latency, snakemake)  # noqa: F821  (injected by Snakemake)
