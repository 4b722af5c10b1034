rule train_knockoff:
    """KnockoffNets clones for every value of one defense's sweep, label kind and replicate seed,
    in one process.

    The transfer set is read once per seed; each value's clone gets the same seed (same
    initialisation and data order), so the clones of a seed differ only by the defense.
    """
    input:
        data=victim_and_transfer_data,
        posteriors=rules.answer_queries.output.posteriors,
        weights=knockoff_weights,
    output:
        metrics=seeds_out(layout.KNOCKOFF_METRICS),
        clones=directory(seeds_out(layout.KNOCKOFF_CLONES)),
    log:
        log("train_knockoff", "{victim}/{transfer}/{defense}"),
    benchmark:
        bench("train_knockoff", "{victim}/{transfer}/{defense}")
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("train_knockoff"),
    params:
        **every_seed("posteriors", "metrics", "clones"),
        code=code_version("train_knockoff.py", defenses="wildcard"),
        victim_cfg=victim_cfg,
        transfer_cfg=transfer_cfg,
        defense_cfg=defense_cfg,
        knockoff=knockoff_cfg,
        params=sweep_texts,
    script:
        "../workflow/scripts/train_knockoff.py"


rule train_knockoff_budgets:
    """The budget curves: soft-label clones of every value of one defense's sweep and every seed
    at the nested budgets of knockoff.budgets, each from scratch on the first queries.
    """
    input:
        data=victim_and_transfer_data,
        posteriors=rules.answer_queries.output.posteriors,
        weights=knockoff_weights,
    output:
        budgets=seeds_out(layout.KNOCKOFF_BUDGETS),
        clones=directory(seeds_out(layout.KNOCKOFF_BUDGET_CLONES)),
    log:
        log("train_knockoff_budgets", "{victim}/{transfer}/{defense}"),
    benchmark:
        bench("train_knockoff_budgets", "{victim}/{transfer}/{defense}")
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("train_knockoff_budgets"),
    params:
        **every_seed("posteriors", "budgets", "clones"),
        code=code_version("train_knockoff_budgets.py", defenses="wildcard"),
        victim_cfg=victim_cfg,
        transfer_cfg=transfer_cfg,
        defense_cfg=defense_cfg,
        knockoff=knockoff_budget_cfg,
        params=sweep_texts,
    script:
        "../workflow/scripts/train_knockoff_budgets.py"


rule run_datafree:
    """DFME / MAZE (the attack's preset) against one defended oracle; every query is defended.

    The longest jobs of an experiment: high priority starts them first, so that short jobs
    fill the gaps around them.
    """
    input:
        data=victim_data,
        victim=own_model,
        posteriors=datafree_posteriors,
        aux=datafree_aux_inputs,
    output:
        metrics=out(layout.DATAFREE_METRICS),
        model=out(layout.DATAFREE_STUDENT),
        history=out(layout.DATAFREE_HISTORY),
    log:
        seed_log("run_datafree", "{attack}/{victim}/{defense}/{param}"),
    benchmark:
        seed_bench("run_datafree", "{attack}/{victim}/{defense}/{param}")
    priority: 10
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("run_datafree"),
    params:
        **COMMON,
        code=code_version("run_datafree.py", defenses="wildcard"),
        victim_cfg=victim_cfg,
        defense_cfg=defense_cfg,
        attack_cfg=lambda wc: config["datafree"]["attacks"][wc.attack],
        aux_names=aux_names,
        student=config.get("datafree", {}).get("student"),
    script:
        "../workflow/scripts/run_datafree.py"
