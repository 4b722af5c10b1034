"""How many jobs of each rule an experiment config asks for, computed from the config alone.

The workflow's DAG must match it (``tests/test_paper_configs.py`` compares it with what
``snakemake -n`` resolves for every config under ``config/``), and ``config/README.md`` quotes it
for the paper configs (checked by the same test), so a job count is never typed by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from .config import (
    aux_models_of,
    aux_owner,
    datafree_runs,
    datafree_transfer,
    knockoff_runs,
    pretrained_arch,
    victims_of_kind,
)
from .data import get_dataset_spec


def job_counts(config: Mapping[str, Any]) -> Counter:
    """Jobs per rule of a full run of a validated, filled-in ``config`` (rule ``all`` aside)."""
    seeds = len(config["seeds"])
    victims = config["victims"]
    jobs: Counter = Counter()
    datasets = {v["dataset"] for v in victims.values()}
    datasets |= {t["dataset"] for t in config["transfer_sets"].values() if t["source"] == "dataset"}
    jobs["prepare_dataset"] = sum(get_dataset_spec(d).needs_download for d in datasets)
    pretrained = {pretrained_arch(entry) for entry in [*victims.values(), config["knockoff"]]} - {None}
    jobs["prepare_weights"] = len(pretrained)
    jobs["train_victim"] = seeds * len(victims_of_kind(config, "train"))
    jobs["quantize_victim"] = seeds * len(victims_of_kind(config, "quantize"))
    misleader = victims_of_kind(config, "misleader")
    jobs["build_ensemble"] = seeds * len(misleader)
    jobs["train_misleader_member"] = seeds * sum(len(victims[m]["misleader"]["members"]) for m in misleader)

    answers = {(v, t, d) for v, t, d, _ in knockoff_runs(config)}
    datafree = list(datafree_runs(config))
    answers |= {(v, datafree_transfer(config, v), d) for _, v, d, _ in datafree}
    # one job serves every seed (the rule's params.seeds): one per sweep
    jobs["answer_queries"] = len(answers)
    jobs["train_knockoff"] = len({(v, t, d) for v, t, d, _ in knockoff_runs(config)})
    jobs["train_knockoff_budgets"] = jobs["train_knockoff"] if config["knockoff"].get("budgets") else 0
    jobs["run_datafree"] = seeds * len(datafree)
    aux = {
        (name, aux_owner(config, v), None if name == "misinformation" else t)
        for v, t, d in answers
        for name in aux_models_of(config, d)
    }
    jobs["train_misinformation"] = seeds * sum(name == "misinformation" for name, _, _ in aux)
    jobs["train_surrogate"] = seeds * sum(name != "misinformation" for name, _, _ in aux)
    latency = config["latency"].get("victims", list(victims))
    jobs["measure_latency"] = len(latency) + len(config["latency"]["reference_victims"])
    jobs["tables"] = jobs["latency_table"] = jobs["claims"] = jobs["resources_table"] = 1
    jobs["leaderboard"] = 1
    jobs["datafree_table"] = int(bool(datafree))
    jobs["budget_table"] = 1
    jobs["quantization_table"] = int(bool(victims_of_kind(config, "quantize")))
    jobs["misleader_table"] = int(bool(misleader))
    return Counter({rule: n for rule, n in jobs.items() if n})


#: The largest plan a config may ask for without ``allow_large_plan: true``: each bound is several
#: times what the largest shipped config needs (config/paper/khaled_datafree.yaml: 362 jobs; 66
#: clones in one KnockoffNets job; 15,625 iterations of one data-free run), so a typo (1,000 seeds,
#: a 10,000-value sweep, a budget of 10^12 queries) is refused before it fills a disk or a queue.
PLAN_BOUNDS = {"jobs": 5_000, "clones_per_job": 1_000, "datafree_iterations": 1_000_000}


def plan_size(config: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """The plan's size in the units of :data:`PLAN_BOUNDS`, each with where its largest value is."""
    from .attacks.datafree_config import from_config

    jobs = sum(job_counts(config).values())
    sweeps: Counter = Counter((v, t, d) for v, t, d, _ in knockoff_runs(config))
    seeds = len(config["seeds"])
    clones = max(
        (
            (
                n * seeds * _clones_per_value(config, v, t, d),
                f"defense {d} against {v} on {t}",
            )
            for (v, t, d), n in sweeps.items()
        ),
        default=(0, ""),
    )
    runs = []
    for attack in sorted({a for a, *_ in datafree_runs(config)}):
        cfg = from_config(config["datafree"]["attacks"][attack])
        runs.append((cfg.iterations_for(cfg.query_budget), f"datafree.attacks.{attack}.query_budget"))
    return {
        "jobs": (jobs, f"{len(config['seeds'])} seeds"),
        "clones_per_job": clones,
        "datafree_iterations": max(runs, default=(0, "")),
    }


def check_plan_bounds(config: Mapping[str, Any]) -> None:
    """Refuse a plan above :data:`PLAN_BOUNDS` (naming the bound, the size and where it comes
    from) unless the config sets ``allow_large_plan: true``."""
    from .config import ConfigError

    if config.get("allow_large_plan"):
        return
    for unit, (size, where) in plan_size(config).items():
        if size > PLAN_BOUNDS[unit]:
            raise ConfigError(
                f"this config plans {size:,} {unit.replace('_', ' ')} ({where}), above the bound of "
                f"{PLAN_BOUNDS[unit]:,} (msdefense.plan.PLAN_BOUNDS); if that is meant, run with "
                "--config allow_large_plan=true"
            )


#: Assumed GPU hours per unit of work on one current data-centre GPU, for an order-of-magnitude
#: estimate only (no paper config has been timed on a GPU yet): a victim, defender model or
#: MISLEADER member trained on a paper dataset, one KnockoffNets clone (50 epochs of 50k images),
#: one data-free attack per million queries, one answer job per seed, one latency job.
HOURS_PER_UNIT = {
    "train_victim": 1.0,
    "quantize_victim": 0.2,
    "train_misleader_member": 3.0,
    "train_misinformation": 0.2,
    "train_surrogate": 0.3,
    "answer_queries": 0.1,
    "clone": 0.5,
    "datafree_million_queries": 0.25,
    "measure_latency": 0.1,
}


def gpu_hours(config: Mapping[str, Any]) -> float:
    """A rough GPU-hour estimate of a full run: job counts × :data:`HOURS_PER_UNIT`."""
    from .attacks.datafree_config import from_config

    jobs = job_counts(config)
    seeds = len(config["seeds"])
    # an answer job serves every seed: its unit of work is one seed's answers
    per_job = {rule: h * (seeds if rule == "answer_queries" else 1) for rule, h in HOURS_PER_UNIT.items()}
    hours = sum(jobs[rule] * h for rule, h in per_job.items() if rule in jobs)
    # a budget clone's epoch cycles to the full query set's length: a clone's work each
    clones = sum(_clones_per_value(config, v, t, d) for v, t, d, _ in knockoff_runs(config))
    hours += seeds * clones * HOURS_PER_UNIT["clone"]
    for attack, *_ in datafree_runs(config):
        budget = from_config(config["datafree"]["attacks"][attack]).query_budget
        hours += seeds * budget / 1e6 * HOURS_PER_UNIT["datafree_million_queries"]
    return hours


def _clones_per_value(config: Mapping[str, Any], victim: str, transfer: str, defense: str) -> int:
    """The clones per sweep value and seed of a (victim, transfer set, defense): one per label kind
    (train_knockoff), one per budget of ``knockoff.budgets`` (train_knockoff_budgets)."""
    from .attacks.knockoff import label_kinds

    kinds = label_kinds(config["knockoff"], defense, _labelled(config, victim, transfer))
    return len(kinds) + len(config["knockoff"].get("budgets", []))


def _labelled(config: Mapping[str, Any], victim: str, transfer: str) -> bool:
    from .attacks.knockoff import labelled_for

    return labelled_for(config["transfer_sets"][transfer], config["victims"][victim]["dataset"])
