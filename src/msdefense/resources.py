"""What each rule needs from a machine, in portable terms; a profile maps it onto a site.

A rule says whether its stage can use a GPU, and how much memory and run time it asks for by
default: sized from measured peaks (``tables/resources.csv`` of a run; in the tiny run about
0.9 GiB for the table jobs, most of it the imports, and up to 1.3 GiB for the training jobs) with
about 1.5× headroom; ``tests/test_workflow.py`` checks that every job's measured peak stays under
what its rule declares. The experiment config says
only how many GPUs a GPU-capable job takes (``resources.gpu``; 0 runs everything on the CPU)
and how many threads a job uses (part of the result: float sums depend on it). Everything that
belongs to a site (partitions, account, paper-scale memory and run times) lives in the profile:
``profiles/default`` (local, GPU jobs serialised) and ``profiles/slurm`` (``set-resources`` per
rule), so moving an experiment from a laptop to a cluster changes the profile only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleNeeds:
    """A rule's portable resources: GPU-capable, memory (MiB) and run time (minutes)."""

    gpu: bool
    mem_mb: int
    runtime: int


_COMPUTE = {"mem_mb": 2000, "runtime": 60}
_CPU_ONLY = {"mem_mb": 1500, "runtime": 30}
_TABLE = {"mem_mb": 1300, "runtime": 10}

#: Every rule of the workflow (rule ``all`` aside); tests check that each one is listed.
RULES: dict[str, RuleNeeds] = {
    "prepare_dataset": RuleNeeds(gpu=False, **_TABLE),
    "prepare_weights": RuleNeeds(gpu=False, **_TABLE),
    "train_victim": RuleNeeds(gpu=True, **_COMPUTE),
    "quantize_victim": RuleNeeds(gpu=True, **_COMPUTE),
    "train_misleader_member": RuleNeeds(gpu=True, **_COMPUTE),
    "build_ensemble": RuleNeeds(gpu=False, **_CPU_ONLY),
    "train_misinformation": RuleNeeds(gpu=True, **_COMPUTE),
    "train_surrogate": RuleNeeds(gpu=True, **_COMPUTE),
    "answer_queries": RuleNeeds(gpu=True, **_COMPUTE),
    "train_knockoff": RuleNeeds(gpu=True, **_COMPUTE),
    "train_knockoff_budgets": RuleNeeds(gpu=True, **_COMPUTE),
    "run_datafree": RuleNeeds(gpu=True, **_COMPUTE),
    "measure_latency": RuleNeeds(gpu=True, **_COMPUTE),
    "tables": RuleNeeds(gpu=False, **_TABLE),
    "latency_table": RuleNeeds(gpu=False, **_TABLE),
    "datafree_table": RuleNeeds(gpu=False, **_TABLE),
    "budget_table": RuleNeeds(gpu=False, **_TABLE),
    "quantization_table": RuleNeeds(gpu=False, **_TABLE),
    "misleader_table": RuleNeeds(gpu=False, **_TABLE),
    "claims": RuleNeeds(gpu=False, **_TABLE),
    "leaderboard": RuleNeeds(gpu=False, **_TABLE),
    "resources_table": RuleNeeds(gpu=False, **_TABLE),
}

#: Rules that run where Snakemake runs, never as cluster jobs: downloads (compute nodes often
#: have no network) and the tables (seconds of pandas).
LOCAL_RULES = (
    "prepare_dataset",
    "prepare_weights",
    "tables",
    "latency_table",
    "datafree_table",
    "budget_table",
    "quantization_table",
    "misleader_table",
    "claims",
    "leaderboard",
    "resources_table",
)


def gpu_rules() -> list[str]:
    """The rules whose stage can use a GPU (they go to a GPU partition on a cluster)."""
    return [name for name, needs in RULES.items() if needs.gpu]


def rule_resources(rule: str, *, gpus: int) -> dict[str, int]:
    """A rule's ``resources``: ``gpus`` GPUs if its stage can use one, its memory and run time."""
    if rule not in RULES:
        raise KeyError(f"rule {rule!r} has no entry in msdefense.resources.RULES; add one")
    needs = RULES[rule]
    return {"gpu": gpus if needs.gpu else 0, "mem_mb": needs.mem_mb, "runtime": needs.runtime}
