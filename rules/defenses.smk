rule train_surrogate:
    """Defender surrogate for GRAD / MAD: distilled on the transfer set, stopped after N epochs."""
    input:
        data=victim_and_transfer_data,
        victim=f"{OUT}/victims/{{victim}}/model.safetensors",
    output:
        model=f"{OUT}/defender_models/{{victim}}/{{transfer}}/surrogate_e{{epochs}}.safetensors",
        metrics=f"{OUT}/defender_models/{{victim}}/{{transfer}}/surrogate_e{{epochs}}.json",
    log:
        f"{OUT}/logs/train_surrogate/{{victim}}/{{transfer}}/e{{epochs}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_surrogate/{{victim}}/{{transfer}}/e{{epochs}}.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: victim_cfg(wc.victim),
        transfer=lambda wc: config["transfer_sets"][wc.transfer],
        recipe=config["defender_models"]["surrogate"],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
        batch_size=config["queries"]["batch_size"],
    script:
        "../workflow/scripts/train_surrogate.py"


rule answer_queries:
    """Defended posteriors on the transfer set and the test set for a defense's whole sweep."""
    input:
        data=victim_and_transfer_data,
        victim=f"{OUT}/victims/{{victim}}/model.safetensors",
        aux=aux_model_inputs,
    output:
        f"{OUT}/posteriors/{{victim}}/{{transfer}}/{{defense}}.npz",
    log:
        f"{OUT}/logs/answer_queries/{{victim}}/{{transfer}}/{{defense}}.log",
    benchmark:
        f"{OUT}/benchmarks/answer_queries/{{victim}}/{{transfer}}/{{defense}}.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: victim_cfg(wc.victim),
        transfer=lambda wc: config["transfer_sets"][wc.transfer],
        defense=lambda wc: defense_cfg(wc.victim, wc.defense),
        aux_names=lambda wc: aux_models_of(config, wc.defense),
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
        batch_size=config["queries"]["batch_size"],
    script:
        "../workflow/scripts/answer_queries.py"
