"""Adapter: rule train_misleader_member -> msdefense.jobs.train_misleader_member."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.train_misleader_member(
        sm.input.teacher,
        sm.wildcards.victim,
        int(sm.wildcards.member),
        sm.params.victim,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.output.model,
        sm.output.metrics,
        sm.output.history,
    )
