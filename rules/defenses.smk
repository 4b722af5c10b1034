rule answer_queries:
    """Defended posteriors on the transfer set and the test set for a defense's whole sweep."""
    input:
        data=victim_and_transfer_data,
        victim=f"{OUT}/victims/{{victim}}/model.safetensors",
    output:
        f"{OUT}/posteriors/{{victim}}/{{transfer}}/{{defense}}.npz",
    log:
        f"{OUT}/logs/answer_queries/{{victim}}/{{transfer}}/{{defense}}.log",
    benchmark:
        f"{OUT}/benchmarks/answer_queries/{{victim}}/{{transfer}}/{{defense}}.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: 2
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=RUNTIME,
    params:
        victim=lambda wc: config["victims"][wc.victim],
        transfer=lambda wc: config["transfer_sets"][wc.transfer],
        defense=lambda wc: config["defenses"][wc.defense],
        data=config["data"],
        seed=config["seed"],
        device=config["device"],
        batch_size=config["queries"]["batch_size"],
    script:
        "../workflow/scripts/answer_queries.py"
