import re
from pathlib import Path

from msdefense.config import (
    aux_model_path,
    aux_models_of,
    aux_owner,
    datafree_runs,
    knockoff_runs,
    victim_arch,
    victim_defenses,
    victims_of_kind,
)
from msdefense.data import get_dataset_spec

OUT = f"results/{config['experiment']}"
DATA_ROOT = config["data"]["root"]
GPU = config["resources"]["gpu"]
THREADS = config["resources"]["threads"]
MEM_MB = config["resources"]["mem_mb"]
RUNTIME = config["resources"]["runtime"]


wildcard_constraints:
    victim="[A-Za-z0-9_.-]+",
    transfer="[A-Za-z0-9_.-]+",
    defense="[A-Za-z0-9_.-]+",
    param="[0-9][0-9.e+-]*",
    dataset="[A-Za-z0-9_-]+",
    epochs="[0-9]+",
    attack="[A-Za-z0-9_.-]+",


def name_pattern(names):
    """A wildcard regex matching exactly ``names`` (and nothing if there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


TRAINED = name_pattern(victims_of_kind(config, "train"))
QUANTIZED = name_pattern(victims_of_kind(config, "quantize"))
MISLEADER = name_pattern(victims_of_kind(config, "misleader"))


def victim_cfg(name):
    """A victim's config entry with ``arch`` filled in (the auxiliary models' architecture)."""
    return {**config["victims"][name], "arch": victim_arch(config, name)}


def defense_cfg(victim, defense):
    """A defense's config entry with the parameters put in front of ``victim``."""
    return {
        **config["defenses"][defense],
        "params": victim_defenses(config, victim)[defense],
    }


def dataset_flags(*datasets):
    """The prepare_dataset flags of the datasets that must be downloaded first."""
    return [
        f"{DATA_ROOT}/{d}/.prepared"
        for d in dict.fromkeys(datasets)
        if get_dataset_spec(d).needs_download
    ]


def victim_data(wildcards):
    return dataset_flags(config["victims"][wildcards.victim]["dataset"])


def victim_and_transfer_data(wildcards):
    transfer = config["transfer_sets"][wildcards.transfer]
    extra = [transfer["dataset"]] if transfer["source"] == "dataset" else []
    return dataset_flags(config["victims"][wildcards.victim]["dataset"], *extra)


def aux_model_inputs(wildcards):
    """Weights of the auxiliary models (surrogates, misinformation model) a defense needs."""
    owner = aux_owner(config, wildcards.victim)
    return [
        aux_model_path(OUT, name, owner, wildcards.transfer)
        for name in aux_models_of(config, wildcards.defense)
    ]


def datafree_transfer(victim):
    """Data-free attacks use no transfer set; the defense's surrogates and the defended test
    answers come from the victim's first transfer set."""
    return config["victims"][victim]["transfer_sets"][0]


def datafree_posteriors(wildcards):
    transfer = datafree_transfer(wildcards.victim)
    return f"{OUT}/posteriors/{wildcards.victim}/{transfer}/{wildcards.defense}.npz"


def datafree_aux_inputs(wildcards):
    transfer = datafree_transfer(wildcards.victim)
    owner = aux_owner(config, wildcards.victim)
    return [
        aux_model_path(OUT, name, owner, transfer)
        for name in aux_models_of(config, wildcards.defense)
    ]


def datafree_metrics():
    return [
        f"{OUT}/attacks/datafree/{a}/{v}/{d}/{p}/metrics.json"
        for a, v, d, p in datafree_runs(config)
    ]


def latency_victims():
    chosen = config["latency"].get("victims", list(config["victims"]))
    return [*chosen, *config["latency"]["reference_victims"]]


def knockoff_metrics():
    return [
        f"{OUT}/attacks/knockoff/{v}/{t}/{d}/{p}/metrics.json"
        for v, t, d, p in knockoff_runs(config)
    ]


def final_targets():
    return [
        f"{OUT}/tables/knockoff.csv",
        f"{OUT}/tables/knockoff.md",
        f"{OUT}/figures/knockoff_tradeoff.png",
        f"{OUT}/figures/knockoff_tradeoff.pdf",
        f"{OUT}/tables/interpolation.csv",
        f"{OUT}/tables/latency.csv",
        f"{OUT}/figures/latency.png",
        *(
            [f"{OUT}/tables/datafree.csv", f"{OUT}/figures/datafree_tradeoff.png"]
            if datafree_metrics()
            else []
        ),
        *(
            [f"{OUT}/tables/quantization.csv"]
            if victims_of_kind(config, "quantize")
            else []
        ),
        *(
            [f"{OUT}/tables/misleader.csv", f"{OUT}/figures/misleader.png"]
            if victims_of_kind(config, "misleader")
            else []
        ),
    ]
