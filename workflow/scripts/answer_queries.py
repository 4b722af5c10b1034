"""Adapter: rule answer_queries -> msdefense.jobs.answer_queries."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.answer_queries(
        sm.input.victim,
        sm.params.victim,
        sm.params.transfer,
        sm.params.defense,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.params.batch_size,
        sm.output[0],
        dict(zip(sm.params.aux_names, sm.input.aux, strict=True)),
    )
