import re
from pathlib import Path

from msdefense import layout
from msdefense.config import (
    format_param,
    aux_models_of,
    aux_owner,
    datafree_runs,
    datafree_transfer,
    pretrained_arch,
    knockoff_runs,
    victim_arch,
    victim_defenses,
    victims_of_kind,
)
from msdefense.attacks.knockoff import budget_view, knockoff_for, labelled_for
from msdefense.data import get_dataset_spec
from msdefense.fingerprint import code_fingerprint
from msdefense.preflight import NAME_WILDCARD
from msdefense.resources import rule_resources

OUT = layout.results_dir(config)
DATA_ROOT = config["data"]["root"]
# a rehearsal (msdefense.rehearsal) fabricates its datasets: this many images per split
SAMPLE_IMAGES = (config.get("rehearsal") or {}).get("images", 0)
THREADS = config["resources"]["threads"]
SEEDS = config["seeds"]
# what every job that trains or queries a model passes to its stage (seed: its replicate's)
COMMON = dict(
    data=config["data"], seed=lambda wc: int(wc.seed), device=config["device"]
)


def every_seed(*per_seed):
    """What a job that serves every replicate seed in one process passes to its stage instead of
    COMMON: the seeds in order, and the inputs and outputs that list one item (or one group, for
    ``aux``) per seed, seed after seed (msdefense.stages.context.requests_from_rule).
    """
    return dict(
        data=config["data"], seeds=SEEDS, per_seed=per_seed, device=config["device"]
    )


def needs(rule):
    """A rule's portable resources (msdefense.resources): the experiment's GPU count if its stage
    can use a GPU, its memory and run time; a profile's set-resources overrides them per site.
    """
    return rule_resources(rule, gpus=config["resources"]["gpu"])


def code_version(script, defenses=()):
    """The fingerprint of what a rule's script and the package code it reaches do (a params
    entry: a code change reruns the rule's jobs; msdefense.fingerprint). ``defenses``: the
    defense methods its jobs apply, or "wildcard" for a rule with a ``{defense}`` wildcard (each
    job's own method). A constant when ``rerun_on_code_change`` is false.
    """
    if not config["rerun_on_code_change"]:
        return "ignored"
    path = WORKFLOW_DIR / "workflow" / "scripts" / script
    if defenses == "wildcard":
        return lambda wc: code_fingerprint(
            path, defenses=[config["defenses"][wc.defense]["method"]]
        )
    return code_fingerprint(path, defenses=defenses)


wildcard_constraints:
    victim=NAME_WILDCARD,
    transfer=NAME_WILDCARD,
    defense=NAME_WILDCARD,
    param="[0-9][0-9.e+-]*",
    dataset="[A-Za-z0-9_-]+",
    epochs="[0-9]+",
    attack=NAME_WILDCARD,
    arch="[A-Za-z0-9_]+",
    seed="[0-9]+",


def out(pattern, **wildcards):
    """An artifact of this experiment (msdefense.layout), wildcards not given left open."""
    return layout.path(OUT, pattern, **wildcards)


def log(rule, pattern):
    return layout.log(OUT, rule, pattern)


def bench(rule, pattern):
    return layout.benchmark(OUT, rule, pattern)


def seed_log(rule, pattern):
    """The log of a per-seed job (its replicate's folder first)."""
    return log(rule, f"{layout.SEED_DIR}/{pattern}")


def seed_bench(rule, pattern):
    return bench(rule, f"{layout.SEED_DIR}/{pattern}")


def name_pattern(names):
    """A wildcard regex matching exactly ``names`` (and nothing if there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


TRAINED = name_pattern(victims_of_kind(config, "train"))
QUANTIZED = name_pattern(victims_of_kind(config, "quantize"))
MISLEADER = name_pattern(victims_of_kind(config, "misleader"))


def victim_cfg(wc):
    """A victim's config entry with ``arch`` filled in (the auxiliary models' architecture)."""
    return {**config["victims"][wc.victim], "arch": victim_arch(config, wc.victim)}


def transfer_cfg(wc):
    return config["transfer_sets"][wc.transfer]


def knockoff_cfg(wc):
    """The knockoff section as this sweep job sees it (its own label kinds only)."""
    return knockoff_for(
        config["knockoff"],
        wc.defense,
        labelled_for(transfer_cfg(wc), config["victims"][wc.victim]["dataset"]),
    )


def defense_cfg(wc):
    """A defense's config entry with the parameters put in front of the victim."""
    return {
        **config["defenses"][wc.defense],
        "params": victim_defenses(config, wc.victim)[wc.defense],
    }


def victim_model(victim, seed):
    return out(layout.VICTIM_MODEL, victim=victim, seed=seed)


def own_model(wc):
    """The job's victim, of the job's replicate."""
    return victim_model(wc.victim, wc.seed)


def source_model(wc):
    """The fp32 victim an int8 victim is quantized from."""
    return victim_model(config["victims"][wc.victim]["quantize"]["source"], wc.seed)


def teacher(wc):
    return config["victims"][wc.victim]["misleader"]["teacher"]


def dataset_flags(*datasets):
    """The prepare_dataset flags of the datasets that must be downloaded first."""
    return [
        layout.DATASET_FLAG.format(root=DATA_ROOT, dataset=d)
        for d in dict.fromkeys(datasets)
        if get_dataset_spec(d).needs_download
    ]


def weights_input(entry):
    """The ImageNet weights file a victim entry or the clone starts from (``pretrained: true``)."""
    arch = pretrained_arch(entry)
    return (
        [] if arch is None else [layout.WEIGHTS_FILE.format(root=DATA_ROOT, arch=arch)]
    )


def victim_weights(wc):
    """What the victim and its defender models start from (``victims.<v>.pretrained``)."""
    return weights_input(config["victims"][wc.victim])


def knockoff_weights(wc):
    """What the KnockoffNets clones start from (``knockoff.pretrained``)."""
    return weights_input(config["knockoff"])


def victim_data(wc):
    return dataset_flags(config["victims"][wc.victim]["dataset"])


def victim_and_transfer_data(wc):
    transfer = config["transfer_sets"][wc.transfer]
    extra = [transfer["dataset"]] if transfer["source"] == "dataset" else []
    return dataset_flags(config["victims"][wc.victim]["dataset"], *extra)


def aux_paths(victim, transfer, defense, seed):
    """Weights of the auxiliary models (surrogates, misinformation model) a defense needs."""
    owner = aux_owner(config, victim)
    return [
        layout.aux_model_path(OUT, name, owner, transfer, seed)
        for name in aux_models_of(config, defense)
    ]


def aux_model_inputs(wc):
    return aux_paths(wc.victim, wc.transfer, wc.defense, wc.seed)


def seeds_out(pattern):
    """One output per replicate seed (the other wildcards left open), in seed order."""
    return [out(pattern, seed=s) for s in SEEDS]


def seeds_victims(wc):
    """The job's victim, of every replicate seed."""
    return [victim_model(wc.victim, s) for s in SEEDS]


def seeds_aux_inputs(wc):
    """The auxiliary models of the job's defense, of every replicate seed, seed after seed."""
    return [p for s in SEEDS for p in aux_paths(wc.victim, wc.transfer, wc.defense, s)]


def aux_names(wc):
    return aux_models_of(config, wc.defense)


def datafree_posteriors(wc):
    return out(
        layout.POSTERIORS,
        victim=wc.victim,
        transfer=datafree_transfer(config, wc.victim),
        defense=wc.defense,
        seed=wc.seed,
    )


def datafree_aux_inputs(wc):
    return aux_paths(
        wc.victim, datafree_transfer(config, wc.victim), wc.defense, wc.seed
    )


def datafree_metrics():
    """Every data-free run's metrics record, for every replicate seed."""
    return [
        out(layout.DATAFREE_METRICS, attack=a, victim=v, defense=d, param=p, seed=s)
        for s in SEEDS
        for a, v, d, p in datafree_runs(config)
    ]


def knockoff_metrics():
    """One metrics file (a list of records, one per sweep value) per KnockoffNets sweep and seed."""
    sweeps = dict.fromkeys((v, t, d) for v, t, d, _ in knockoff_runs(config))
    return [
        out(layout.KNOCKOFF_METRICS, victim=v, transfer=t, defense=d, seed=s)
        for s in SEEDS
        for v, t, d in sweeps
    ]


def knockoff_budgets():
    """The budget-curve records of every KnockoffNets sweep and seed (none without knockoff.budgets)."""
    if not config["knockoff"].get("budgets"):
        return []
    sweeps = dict.fromkeys((v, t, d) for v, t, d, _ in knockoff_runs(config))
    return [
        out(layout.KNOCKOFF_BUDGETS, victim=v, transfer=t, defense=d, seed=s)
        for s in SEEDS
        for v, t, d in sweeps
    ]


def knockoff_budget_cfg(wc):
    """What the budget clones read of the knockoff section (msdefense.attacks.knockoff.budget_view)."""
    return budget_view(config["knockoff"])


def datafree_histories():
    """Every data-free run's checkpoint history, in the order of datafree_metrics()."""
    return [
        out(layout.DATAFREE_HISTORY, attack=a, victim=v, defense=d, param=p, seed=s)
        for s in SEEDS
        for a, v, d, p in datafree_runs(config)
    ]


def budget_victims():
    """The victims with a budget curve: every victim a KnockoffNets or data-free attack meets."""
    attacked = [v for v, _, _, _ in knockoff_runs(config)]
    attacked += [v for _, v, _, _ in datafree_runs(config)]
    return list(dict.fromkeys(attacked))


def sweep_texts(wc):
    """The canonical texts of the sweep values put in front of the victim."""
    return [format_param(p) for p in victim_defenses(config, wc.victim)[wc.defense]]


def latency_victims():
    chosen = config["latency"].get("victims", list(config["victims"]))
    return [*chosen, *config["latency"]["reference_victims"]]


def latency_files():
    return [out(layout.LATENCY, victim=v) for v in latency_victims()]


def victim_metrics(kind):
    """The metrics records of every victim of ``kind``, for every replicate seed."""
    return [
        out(layout.VICTIM_METRICS, victim=v, seed=s)
        for s in SEEDS
        for v in victims_of_kind(config, kind)
    ]


def final_targets():
    """Every table and figure: the resources table last (it reads every job's benchmark)."""
    return [
        *table_targets(),
        *(layout.table(OUT, "resources", ext) for ext in ("csv", "md")),
    ]


def table_targets():
    """Every table and figure but the resources table."""
    tables = [
        "knockoff",
        "interpolation",
        "latency",
        "claims",
        "budget",
        "budget_curves",
        "leaderboard",
        "results",
    ]
    figures = [
        "knockoff_tradeoff",
        "latency",
        "leaderboard",
        *(f"budget_{v}" for v in budget_victims()),
    ]
    if datafree_metrics():
        tables.append("datafree")
        figures.append("datafree_tradeoff")
    if victims_of_kind(config, "quantize"):
        tables.append("quantization")
    if victims_of_kind(config, "misleader"):
        tables.append("misleader")
        figures.append("misleader")
    return [
        *(
            layout.table(OUT, t, ext)
            for t in tables
            for ext in ("csv", "md")
            if (t, ext) != ("results", "md")
        ),
        *(layout.figure(OUT, f, ext) for f in figures for ext in ("png", "pdf")),
    ]


def victim_datasets():
    """Every victim's dataset (the results bundle's ``dataset`` column)."""
    return {name: v["dataset"] for name, v in config["victims"].items()}
