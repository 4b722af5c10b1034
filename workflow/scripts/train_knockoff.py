"""Adapter: rule train_knockoff -> msdefense.jobs.train_knockoff."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.train_knockoff(
        sm.input.posteriors,
        sm.wildcards.param,
        {k: sm.wildcards[k] for k in ("victim", "transfer", "defense")},
        sm.params.victim,
        sm.params.transfer,
        sm.params.defense,
        sm.params.knockoff,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.output.metrics,
        sm.output.model,
    )
