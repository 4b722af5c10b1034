"""Every artifact's path pattern, once: ``rules/common.smk`` and the package both read them here.

Patterns are relative to an experiment's results folder (:func:`results_dir`) and use
Snakemake's ``{wildcard}`` syntax; :func:`path` fills them in. Everything that depends on
randomness (victims, defender models, answers, attacks) lives under ``seed<k>/`` (:data:`SEED_DIR`),
once per replicate seed of the config's ``seeds``; the datasets, the latency measurements (of the
first seed's victims) and the tables (over all seeds) do not. Logs and Snakemake benchmarks
mirror the wildcards of their rule under ``logs/<rule>/`` and ``benchmarks/<rule>/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

# one replicate's folder: every per-seed artifact below starts with it
SEED_DIR = "seed{seed}"

# victims (every kind: trained, int8, MISLEADER ensemble) and their parts
VICTIM_MODEL = SEED_DIR + "/victims/{victim}/model.safetensors"
VICTIM_METRICS = SEED_DIR + "/victims/{victim}/metrics.json"
VICTIM_HISTORY = SEED_DIR + "/victims/{victim}/history.csv"
MEMBER_MODEL = SEED_DIR + "/victims/{victim}/members/{member}.safetensors"
MEMBER_METRICS = SEED_DIR + "/victims/{victim}/members/{member}.json"
MEMBER_HISTORY = SEED_DIR + "/victims/{victim}/members/{member}.csv"

# the defenses' auxiliary models
MISINFORMATION_MODEL = SEED_DIR + "/defender_models/{victim}/misinformation.safetensors"
MISINFORMATION_METRICS = SEED_DIR + "/defender_models/{victim}/misinformation.json"
SURROGATE_MODEL = SEED_DIR + "/defender_models/{victim}/{transfer}/surrogate_e{epochs}.safetensors"
SURROGATE_METRICS = SEED_DIR + "/defender_models/{victim}/{transfer}/surrogate_e{epochs}.json"

# defended answers and attacks
POSTERIORS = SEED_DIR + "/posteriors/{victim}/{transfer}/{defense}.npz"
# KnockoffNets: one job per defense sweep; one record per label kind × value, one clone file each
KNOCKOFF_SWEEP = SEED_DIR + "/attacks/knockoff/{victim}/{transfer}/{defense}"
KNOCKOFF_METRICS = f"{KNOCKOFF_SWEEP}/metrics.json"
KNOCKOFF_CLONES = f"{KNOCKOFF_SWEEP}/clones"
KNOCKOFF_CLONE_FILE = "{labels}/{param}.safetensors"  # inside KNOCKOFF_CLONES; labels: soft, argmax
KNOCKOFF_CLONE = f"{KNOCKOFF_CLONES}/{KNOCKOFF_CLONE_FILE}"
# the budget-curve clones (knockoff.budgets): the soft clones that saw the first {queries} queries
KNOCKOFF_BUDGETS = f"{KNOCKOFF_SWEEP}/budgets.json"
KNOCKOFF_BUDGET_CLONES = f"{KNOCKOFF_SWEEP}/budget_clones"
KNOCKOFF_BUDGET_CLONE_FILE = "{queries}/{param}.safetensors"  # inside KNOCKOFF_BUDGET_CLONES
KNOCKOFF_BUDGET_CLONE = f"{KNOCKOFF_BUDGET_CLONES}/{KNOCKOFF_BUDGET_CLONE_FILE}"
DATAFREE_RUN = SEED_DIR + "/attacks/datafree/{attack}/{victim}/{defense}/{param}"
DATAFREE_METRICS = f"{DATAFREE_RUN}/metrics.json"
DATAFREE_STUDENT = f"{DATAFREE_RUN}/student.safetensors"
DATAFREE_HISTORY = f"{DATAFREE_RUN}/history.csv"

# latency, tables, figures
LATENCY = "latency/{victim}.json"
TABLE = "tables/{name}.{ext}"
SEEDS_TABLE = "tables/{name}_seeds.csv"  # the per-seed rows behind the table {name}
FIGURE = "figures/{name}.{ext}"

# downloaded datasets live under the config's data.root, not under the results folder
DATASET_FLAG = "{root}/{dataset}/.prepared"
#: torchvision ImageNet weights of a pretrainable architecture (local rule prepare_weights)
WEIGHTS_FILE = "{root}/weights/{arch}.pth"

#: The rule that writes a victim's model and metrics (VICTIM_MODEL, VICTIM_METRICS), by its kind.
VICTIM_WRITERS = {"fp32": "train_victim", "int8": "quantize_victim", "ensemble": "build_ensemble"}
#: The rules (rules/*.smk) that write each pattern above: what to rerun when an artifact is bad.
WRITERS: dict[str, tuple[str, ...]] = {
    VICTIM_MODEL: tuple(VICTIM_WRITERS.values()),
    VICTIM_METRICS: tuple(VICTIM_WRITERS.values()),
    VICTIM_HISTORY: ("train_victim",),
    MEMBER_MODEL: ("train_misleader_member",),
    MEMBER_METRICS: ("train_misleader_member",),
    MEMBER_HISTORY: ("train_misleader_member",),
    MISINFORMATION_MODEL: ("train_misinformation",),
    MISINFORMATION_METRICS: ("train_misinformation",),
    SURROGATE_MODEL: ("train_surrogate",),
    SURROGATE_METRICS: ("train_surrogate",),
    POSTERIORS: ("answer_queries",),
    KNOCKOFF_METRICS: ("train_knockoff",),
    KNOCKOFF_CLONE: ("train_knockoff",),
    KNOCKOFF_BUDGETS: ("train_knockoff_budgets",),
    KNOCKOFF_BUDGET_CLONE: ("train_knockoff_budgets",),
    DATAFREE_METRICS: ("run_datafree",),
    DATAFREE_STUDENT: ("run_datafree",),
    DATAFREE_HISTORY: ("run_datafree",),
    LATENCY: ("measure_latency",),
    WEIGHTS_FILE: ("prepare_weights",),
}

_SURROGATE = re.compile(r"surrogate_e(\d+)")


@cache
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex finding an instance of ``pattern`` at the end of a path, one named group per wildcard."""
    parts = re.split(r"(\{\w+\})", pattern)
    body = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(rf"(?:^|/){body}$")


def results_dir(config: Mapping[str, Any]) -> str:
    """The results folder of an experiment: ``results/<experiment>``."""
    return f"results/{config['experiment']}"


def path(out: str, pattern: str, **wildcards: Any) -> str:
    """``pattern`` under ``out`` with the given wildcards filled in (the others left as ``{name}``)."""
    filled = re.sub(r"\{(\w+)\}", lambda m: str(wildcards.get(m[1], m[0])), pattern)
    return f"{out}/{filled}"


def table(out: str, name: str, ext: str) -> str:
    return path(out, TABLE, name=name, ext=ext)


def seeds_table(out: str, name: str) -> str:
    return path(out, SEEDS_TABLE, name=name)


def figure(out: str, name: str, ext: str) -> str:
    return path(out, FIGURE, name=name, ext=ext)


def log(out: str, rule: str, pattern: str) -> str:
    """The log of ``rule`` for the wildcards of ``pattern`` (e.g. ``{victim}/{transfer}``)."""
    return f"{out}/logs/{rule}/{pattern}.log"


def gpu_peak_path(log_path: str | Path) -> Path:
    """Beside a job's log ``<name>.log``: ``<name>.gpu.json``, its peak CUDA memory (MiB; 0 off CUDA)
    and the peak resident memory of the process that ran it (MiB)."""
    return Path(log_path).with_suffix(".gpu.json")


def benchmark(out: str, rule: str, pattern: str) -> str:
    """The Snakemake benchmark file of ``rule`` for the wildcards of ``pattern``."""
    return f"{out}/benchmarks/{rule}/{pattern}.tsv"


def aux_model_path(out: str, name: str, victim: str, transfer: str, seed: int | str) -> str:
    """Where the auxiliary model ``name`` of a defense of ``victim`` is kept (replicate ``seed``).

    ``misinformation`` (AdaptiveMisinformation) is per victim; ``surrogate_e<N>`` (GRAD, MAD:
    distilled on the transfer set, stopped after N epochs) is per victim × transfer set.
    """
    if name == "misinformation":
        return path(out, MISINFORMATION_MODEL, victim=victim, seed=seed)
    match = _SURROGATE.fullmatch(name)
    if match:
        return path(out, SURROGATE_MODEL, victim=victim, transfer=transfer, epochs=match[1], seed=seed)
    raise ValueError(f"no rule produces the auxiliary model {name!r}")
