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
        victim=lambda wc: config["victims"][wc.victim],
        transfer=lambda wc: config["transfer_sets"][wc.transfer],
        defense=lambda wc: config["defenses"][wc.defense],
        knockoff=config["knockoff"],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/train_knockoff.py"
