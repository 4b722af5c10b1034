rule train_knockoff:
    """KnockoffNets soft-label clone trained on the answers for one sweep value."""
    input:
        data=victim_and_transfer_data,
        posteriors=f"{OUT}/posteriors/{{victim}}/{{transfer}}/{{defense}}.npz",
    output:
        metrics=f"{OUT}/attacks/knockoff/{{victim}}/{{transfer}}/{{defense}}/{{param}}/metrics.json",
        model=f"{OUT}/attacks/knockoff/{{victim}}/{{transfer}}/{{defense}}/{{param}}/clone.safetensors",
    log:
        f"{OUT}/logs/train_knockoff/{{victim}}/{{transfer}}/{{defense}}/{{param}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_knockoff/{{victim}}/{{transfer}}/{{defense}}/{{param}}.tsv"
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
        knockoff=config["knockoff"],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/train_knockoff.py"


rule run_datafree:
    """DFME / MAZE (the attack's preset) against one defended oracle; every query is defended.

    The longest jobs of an experiment: high priority starts them first, so that short jobs
    fill the gaps around them.
    """
    input:
        data=victim_data,
        victim=f"{OUT}/victims/{{victim}}/model.safetensors",
        posteriors=datafree_posteriors,
        aux=datafree_aux_inputs,
    output:
        metrics=f"{OUT}/attacks/datafree/{{attack}}/{{victim}}/{{defense}}/{{param}}/metrics.json",
        model=f"{OUT}/attacks/datafree/{{attack}}/{{victim}}/{{defense}}/{{param}}/student.safetensors",
        history=f"{OUT}/attacks/datafree/{{attack}}/{{victim}}/{{defense}}/{{param}}/history.csv",
    log:
        f"{OUT}/logs/run_datafree/{{attack}}/{{victim}}/{{defense}}/{{param}}.log",
    benchmark:
        f"{OUT}/benchmarks/run_datafree/{{attack}}/{{victim}}/{{defense}}/{{param}}.tsv"
    priority: 10
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: victim_cfg(wc.victim),
        defense=lambda wc: defense_cfg(wc.victim, wc.defense),
        attack=lambda wc: config["datafree"]["attacks"][wc.attack],
        aux_names=lambda wc: aux_models_of(config, wc.defense),
        student=config.get("datafree", {}).get("student"),
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/run_datafree.py"
