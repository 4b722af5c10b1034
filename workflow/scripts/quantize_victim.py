"""Adapter: rule quantize_victim -> msdefense.jobs.quantize_victim."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.quantize_victim(
        sm.input.source,
        sm.wildcards.victim,
        sm.params.victim,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.output.model,
        sm.output.metrics,
    )
