from pathlib import Path

from msdefense.config import aux_model_path, aux_models_of, datafree_runs, knockoff_runs
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
    return [
        aux_model_path(OUT, name, wildcards.victim, wildcards.transfer)
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
    return [
        aux_model_path(OUT, name, wildcards.victim, transfer)
        for name in aux_models_of(config, wildcards.defense)
    ]


def datafree_metrics():
    return [
        f"{OUT}/attacks/datafree/{a}/{v}/{d}/{p}/metrics.json"
        for a, v, d, p in datafree_runs(config)
    ]


def latency_victims():
    return [*config["victims"], *config["latency"]["reference_victims"]]


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
    ]
