"""Adapter: rule prepare_dataset -> msdefense.data.paper.prepare (downloads into the data root)."""

from pathlib import Path

from msdefense.data.paper import prepare
from msdefense.runtime import job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with job(sm.log[0]):
    prepare(sm.wildcards.dataset, Path(sm.params.root))
