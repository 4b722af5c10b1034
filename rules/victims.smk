rule train_victim:
    """Train a victim (teacher) with the reference recipe."""
    input:
        victim_data,
    output:
        model=f"{OUT}/victims/{{victim}}/model.safetensors",
        metrics=f"{OUT}/victims/{{victim}}/metrics.json",
        history=f"{OUT}/victims/{{victim}}/history.csv",
    log:
        f"{OUT}/logs/train_victim/{{victim}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_victim/{{victim}}.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: config["victims"][wc.victim],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/train_victim.py"


rule train_misinformation:
    """Misinformation model of AdaptiveMisinformation: low probability on the true class."""
    input:
        victim_data,
    output:
        model=f"{OUT}/defender_models/{{victim}}/misinformation.safetensors",
        metrics=f"{OUT}/defender_models/{{victim}}/misinformation.json",
    log:
        f"{OUT}/logs/train_misinformation/{{victim}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_misinformation/{{victim}}.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: config["victims"][wc.victim],
        recipe=config["defender_models"]["misinformation"],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/train_misinformation.py"
