"""Defenses against model stealing of CNNs: one DAG from data to the papers' tables.

Run `snakemake --cores all` for the embedded default experiment (config/config.yaml).
"""

from pathlib import Path

from snakemake.utils import min_version, validate

from msdefense.preflight import preflight
from msdefense.deployment import export_job_pythonpath
from msdefense.resources import LOCAL_RULES

min_version("9.20")

# This checkout: its package code, config schema and scripts are found here, and every output
# in the working directory. workflow.basedir would be the main Snakefile's folder, another
# workflow's where this one is a Snakemake module (docs/architecture.md).
WORKFLOW_DIR = Path(workflow.current_basedir)

# every job imports the package from this checkout (also in a conda env: msdefense.deployment)
export_job_pythonpath(WORKFLOW_DIR)


# A config given with --configfile replaces the default experiment instead of being merged
# into it (otherwise a paper config would also run the default victims).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# config files read strictly, names, finite numbers, schema, registries: before any job
SCHEMA = WORKFLOW_DIR / "config" / "schema.yaml"
preflight(
    config,
    validate=lambda c: validate(c, str(SCHEMA)),
    schema=SCHEMA,
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
