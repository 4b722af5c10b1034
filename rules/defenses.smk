rule train_misinformation:
    """Misinformation model of AdaptiveMisinformation: low probability on the true class."""
    input:
        data=victim_data,
        weights=victim_weights,
    output:
        model=out(layout.MISINFORMATION_MODEL),
        metrics=out(layout.MISINFORMATION_METRICS),
    log:
        seed_log("train_misinformation", "{victim}"),
    benchmark:
        seed_bench("train_misinformation", "{victim}")
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("train_misinformation"),
    params:
        **COMMON,
        code=code_version("train_misinformation.py"),
        victim_cfg=victim_cfg,
        recipe=config["defender_models"]["misinformation"],
    script:
        "../workflow/scripts/train_misinformation.py"


rule train_surrogate:
    """Defender surrogate for GRAD / MAD: distilled on the transfer set, stopped after N epochs."""
    input:
        data=victim_and_transfer_data,
        victim=own_model,
        weights=victim_weights,
    output:
        model=out(layout.SURROGATE_MODEL),
        metrics=out(layout.SURROGATE_METRICS),
    log:
        seed_log("train_surrogate", "{victim}/{transfer}/e{epochs}"),
    benchmark:
        seed_bench("train_surrogate", "{victim}/{transfer}/e{epochs}")
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("train_surrogate"),
    params:
        **COMMON,
        code=code_version("train_surrogate.py"),
        victim_cfg=victim_cfg,
        transfer_cfg=transfer_cfg,
        recipe=config["defender_models"]["surrogate"],
        batch_size=config["queries"]["batch_size"],
    script:
        "../workflow/scripts/train_surrogate.py"


rule answer_queries:
    """Defended posteriors on the transfer set and the test set for a defense's whole sweep, for
    every replicate seed in one process (one start-up; the seeds share the data)."""
    input:
        data=victim_and_transfer_data,
        victim=seeds_victims,
        aux=seeds_aux_inputs,
    output:
        posteriors=seeds_out(layout.POSTERIORS),
    log:
        log("answer_queries", "{victim}/{transfer}/{defense}"),
    benchmark:
        bench("answer_queries", "{victim}/{transfer}/{defense}")
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("answer_queries"),
    params:
        **every_seed("victim", "aux", "posteriors"),
        code=code_version("answer_queries.py", defenses="wildcard"),
        victim_cfg=victim_cfg,
        transfer_cfg=transfer_cfg,
        defense_cfg=defense_cfg,
        aux_names=aux_names,
        batch_size=config["queries"]["batch_size"],
    script:
        "../workflow/scripts/answer_queries.py"
