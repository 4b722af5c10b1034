"""Adapter: rule measure_latency -> msdefense.jobs.measure_latency."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.measure_latency(
        sm.wildcards.victim,
        sm.input.victim[0] if sm.input.victim else None,
        sm.params.reference,
        sm.params.defenses,
        sm.params.latency,
        sm.params.seed,
        sm.params.device,
        sm.output[0],
    )
