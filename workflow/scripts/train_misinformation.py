"""Adapter: rule train_misinformation -> msdefense.jobs.train_misinformation."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.train_misinformation(
        sm.wildcards.victim,
        sm.params.victim,
        sm.params.recipe,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.output.model,
        sm.output.metrics,
    )
