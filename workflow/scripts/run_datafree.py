"""Adapter: rule run_datafree -> msdefense.jobs.run_datafree_attack."""

from msdefense import jobs
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0], sm.threads):
    jobs.run_datafree_attack(
        sm.input.victim,
        sm.input.posteriors,
        {k: sm.wildcards[k] for k in ("attack", "victim", "defense")},
        sm.wildcards.param,
        sm.params.victim,
        sm.params.defense,
        sm.params.attack,
        sm.params.student,
        sm.params.data,
        sm.params.seed,
        sm.params.device,
        sm.output.metrics,
        sm.output.model,
        sm.output.history,
        dict(zip(sm.params.aux_names, sm.input.aux, strict=True)),
    )
