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
    wildcard_constraints:
        victim=TRAINED,
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: victim_cfg(wc.victim),
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
        victim=lambda wc: victim_cfg(wc.victim),
        recipe=config["defender_models"]["misinformation"],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/train_misinformation.py"


rule quantize_victim:
    """int8 copy of a trained victim: PTQ or QAT, FX graph mode, x86 (server) or qnnpack (edge)."""
    input:
        data=victim_data,
        source=lambda wc: f"{OUT}/victims/{config['victims'][wc.victim]['quantize']['source']}/model.safetensors",
    output:
        model=f"{OUT}/victims/{{victim}}/model.safetensors",
        metrics=f"{OUT}/victims/{{victim}}/metrics.json",
    log:
        f"{OUT}/logs/quantize_victim/{{victim}}.log",
    benchmark:
        f"{OUT}/benchmarks/quantize_victim/{{victim}}.tsv"
    wildcard_constraints:
        victim=QUANTIZED,
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: victim_cfg(wc.victim),
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/quantize_victim.py"


rule train_misleader_member:
    """One MISLEADER member: distilled from the teacher, pushed away from an inner attacker."""
    input:
        data=victim_data,
        teacher=lambda wc: f"{OUT}/victims/{config['victims'][wc.victim]['misleader']['teacher']}/model.safetensors",
    output:
        model=f"{OUT}/victims/{{victim}}/members/{{member}}.safetensors",
        metrics=f"{OUT}/victims/{{victim}}/members/{{member}}.json",
        history=f"{OUT}/victims/{{victim}}/members/{{member}}.csv",
    log:
        f"{OUT}/logs/train_misleader_member/{{victim}}/{{member}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_misleader_member/{{victim}}/{{member}}.tsv"
    wildcard_constraints:
        victim=MISLEADER,
        member="[0-9]+",
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
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/train_misleader_member.py"


rule build_ensemble:
    """The MISLEADER victim: soft voting over its members' softmax outputs."""
    input:
        members=lambda wc: [
            f"{OUT}/victims/{wc.victim}/members/{i}.safetensors"
            for i in range(len(config["victims"][wc.victim]["misleader"]["members"]))
        ],
        teacher_metrics=lambda wc: f"{OUT}/victims/{config['victims'][wc.victim]['misleader']['teacher']}/metrics.json",
    output:
        model=f"{OUT}/victims/{{victim}}/model.safetensors",
        metrics=f"{OUT}/victims/{{victim}}/metrics.json",
    log:
        f"{OUT}/logs/build_ensemble/{{victim}}.log",
    benchmark:
        f"{OUT}/benchmarks/build_ensemble/{{victim}}.tsv"
    wildcard_constraints:
        victim=MISLEADER,
    priority: 10
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: victim_cfg(wc.victim),
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow/scripts/build_ensemble.py"
