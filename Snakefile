"""Defenses against model stealing of CNNs: one DAG from data to the papers' tables.

Run `snakemake --cores all` for the embedded default experiment (config/config.yaml).
"""

from pathlib import Path

from snakemake.utils import min_version, validate

from msdefense.preflight import preflight
from msdefense.deployment import export_job_pythonpath
from msdefense.resources import LOCAL_RULES

min_version("9.20")

# every job imports the package from this checkout (also in a conda env: msdefense.deployment)
export_job_pythonpath(workflow.basedir)


# A config given with --configfile replaces the default experiment instead of being merged
# into it (otherwise a paper config would also run the default victims).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# config files read strictly, names, finite numbers, schema, registries: before any job
preflight(
    config,
    validate=lambda c: validate(c, "config/schema.yaml"),
    schema=Path(workflow.basedir) / "config" / "schema.yaml",
    files=workflow.configfiles,
)


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/victims.smk"
include: "rules/defenses.smk"
include: "rules/attacks.smk"
include: "rules/latency.smk"
include: "rules/tables.smk"


# downloads and tables run where Snakemake runs, never as cluster jobs (msdefense.resources)
workflow.localrules(*LOCAL_RULES)


rule all:
    default_target: True
    input:
        final_targets(),
