"""Adapter: rule train_surrogate -> msdefense.jobs.train_surrogate."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.train_surrogate(
        sm.input.victim,
        {k: sm.wildcards[k] for k in ("victim", "transfer")},
        sm.params.victim,
        sm.params.transfer,
        sm.params.recipe,
        int(sm.wildcards.epochs),
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.params.batch_size,
        sm.output.model,
        sm.output.metrics,
    )
