"""Adapter: rule build_ensemble -> msdefense.jobs.build_ensemble."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.build_ensemble(
        list(sm.input.members),
        sm.wildcards.victim,
        sm.params.victim,
        sm.input.teacher_metrics,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.output.model,
        sm.output.metrics,
    )
