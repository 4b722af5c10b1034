rule tables:
    """KnockoffNets table, GRAD² interpolation table and the utility/extraction trade-off figure."""
    input:
        metrics=knockoff_metrics(),
    output:
        csv=report(
            layout.table(OUT, "knockoff", "csv"),
            caption="../workflow/report/knockoff_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "knockoff", "md"),
        seeds=layout.seeds_table(OUT, "knockoff"),
        interpolation=report(
            layout.table(OUT, "interpolation", "csv"),
            caption="../workflow/report/interpolation_table.rst",
            category="Tables",
        ),
        interpolation_md=layout.table(OUT, "interpolation", "md"),
        interpolation_seeds=layout.seeds_table(OUT, "interpolation"),
        png=report(
            layout.figure(OUT, "knockoff_tradeoff", "png"),
            caption="../workflow/report/knockoff_tradeoff.rst",
            category="Figures",
        ),
        pdf=layout.figure(OUT, "knockoff_tradeoff", "pdf"),
    log:
        log("tables", "knockoff"),
    benchmark:
        bench("tables", "knockoff")
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("tables"),
    params:
        code=code_version("tables.py"),
    script:
        "../workflow/scripts/tables.py"


rule latency_table:
    """Latency table (ms per query, overhead vs the undefended pass, slowdown vs DCP) and figure."""
    input:
        metrics=latency_files(),
    output:
        csv=report(
            layout.table(OUT, "latency", "csv"),
            caption="../workflow/report/latency_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "latency", "md"),
        png=report(
            layout.figure(OUT, "latency", "png"),
            caption="../workflow/report/latency_figure.rst",
            category="Figures",
        ),
        pdf=layout.figure(OUT, "latency", "pdf"),
    log:
        log("tables", "latency"),
    benchmark:
        bench("latency_table", "latency")
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("latency_table"),
    params:
        code=code_version("latency_table.py"),
    script:
        "../workflow/scripts/latency_table.py"


rule datafree_table:
    """Data-free (DFME / MAZE) table and its utility/extraction figure."""
    input:
        metrics=datafree_metrics(),
    output:
        csv=report(
            layout.table(OUT, "datafree", "csv"),
            caption="../workflow/report/datafree_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "datafree", "md"),
        seeds=layout.seeds_table(OUT, "datafree"),
        png=report(
            layout.figure(OUT, "datafree_tradeoff", "png"),
            caption="../workflow/report/datafree_tradeoff.rst",
            category="Figures",
        ),
        pdf=layout.figure(OUT, "datafree_tradeoff", "pdf"),
    log:
        log("tables", "datafree"),
    benchmark:
        bench("datafree_table", "datafree")
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("datafree_table"),
    params:
        code=code_version("datafree_table.py"),
    script:
        "../workflow/scripts/datafree_table.py"


rule budget_table:
    """Budget curves: clone accuracy against oracle queries (KnockoffNets at the nested budgets of
    knockoff.budgets, DFME / MAZE at their checkpoints), their areas and reach, one figure per victim.
    """
    input:
        knockoff=knockoff_metrics(),
        budgets=knockoff_budgets(),
        datafree=datafree_metrics(),
        histories=datafree_histories(),
    output:
        csv=report(
            layout.table(OUT, "budget", "csv"),
            caption="../workflow/report/budget_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "budget", "md"),
        seeds=layout.seeds_table(OUT, "budget"),
        curves=report(
            layout.table(OUT, "budget_curves", "csv"),
            caption="../workflow/report/budget_curves.rst",
            category="Tables",
        ),
        curves_md=layout.table(OUT, "budget_curves", "md"),
        png=report(
            [layout.figure(OUT, f"budget_{v}", "png") for v in budget_victims()],
            caption="../workflow/report/budget_figure.rst",
            category="Figures",
        ),
        pdf=[layout.figure(OUT, f"budget_{v}", "pdf") for v in budget_victims()],
    log:
        log("tables", "budget"),
    benchmark:
        bench("budget_table", "budget")
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("budget_table"),
    params:
        code=code_version("budget_table.py"),
        victims=budget_victims(),
    script:
        "../workflow/scripts/budget_table.py"


rule quantization_table:
    """Quantized victims (Khaled et al. 2023): fp32 vs int8 victims (accuracy, weight size, ms per query)."""
    input:
        victims=victim_metrics("quantize"),
        latency=latency_files(),
    output:
        csv=report(
            layout.table(OUT, "quantization", "csv"),
            caption="../workflow/report/quantization_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "quantization", "md"),
        seeds=layout.seeds_table(OUT, "quantization"),
    log:
        log("tables", "quantization"),
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("quantization_table"),
    params:
        code=code_version("quantization_table.py"),
    script:
        "../workflow/scripts/quantization_table.py"


rule misleader_table:
    """MISLEADER's Table B: clone accuracy of every attack on the ensemble and on the teacher
    behind each baseline defense at matched defended accuracy."""
    input:
        ensembles=victim_metrics("misleader"),
        knockoff=knockoff_metrics(),
        datafree=datafree_metrics(),
    output:
        csv=report(
            layout.table(OUT, "misleader", "csv"),
            caption="../workflow/report/misleader_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "misleader", "md"),
        seeds=layout.seeds_table(OUT, "misleader"),
        png=report(
            layout.figure(OUT, "misleader", "png"),
            caption="../workflow/report/misleader_figure.rst",
            category="Figures",
        ),
        pdf=layout.figure(OUT, "misleader", "pdf"),
    log:
        log("tables", "misleader"),
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("misleader_table"),
    params:
        code=code_version("misleader_table.py"),
    script:
        "../workflow/scripts/misleader_table.py"


rule claims:
    """A verdict per claim of the two papers, computed from the per-seed tables by a stated rule."""
    input:
        knockoff=rules.tables.output.seeds,
        interpolation=rules.tables.output.interpolation_seeds,
        latency=rules.latency_table.output.csv,
        datafree=rules.datafree_table.output.seeds if datafree_metrics() else [],
        misleader=(
            rules.misleader_table.output.seeds
            if victims_of_kind(config, "misleader")
            else []
        ),
        quantization=(
            rules.quantization_table.output.seeds
            if victims_of_kind(config, "quantize")
            else []
        ),
    output:
        csv=report(
            layout.table(OUT, "claims", "csv"),
            caption="../workflow/report/claims_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "claims", "md"),
    log:
        log("tables", "claims"),
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("claims"),
    params:
        code=code_version("claims_table.py"),
    script:
        "../workflow/scripts/claims_table.py"


rule leaderboard:
    """The results bundle (every attack outcome per seed: docs/results-schema.md) and the
    leaderboard: defenses ranked by worst-case clone accuracy within the utility margin.
    """
    input:
        knockoff=rules.tables.output.seeds,
        interpolation=rules.tables.output.interpolation_seeds,
        latency=rules.latency_table.output.csv,
        datafree=rules.datafree_table.output.seeds if datafree_metrics() else [],
        budgets=rules.budget_table.output.seeds,
    output:
        results=layout.table(OUT, "results", "csv"),
        csv=report(
            layout.table(OUT, "leaderboard", "csv"),
            caption="../workflow/report/leaderboard_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "leaderboard", "md"),
        png=report(
            layout.figure(OUT, "leaderboard", "png"),
            caption="../workflow/report/leaderboard_figure.rst",
            category="Figures",
        ),
        pdf=layout.figure(OUT, "leaderboard", "pdf"),
    log:
        log("tables", "leaderboard"),
    benchmark:
        bench("leaderboard", "leaderboard")
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("leaderboard"),
    params:
        code=code_version("leaderboard.py"),
        experiment=config["experiment"],
        datasets=victim_datasets(),
    script:
        "../workflow/scripts/leaderboard.py"


rule resources_table:
    """Seconds and peak host / GPU memory of every job, next to the memory its rule declares."""
    input:
        tables=table_targets(),
    output:
        csv=report(
            layout.table(OUT, "resources", "csv"),
            caption="../workflow/report/resources_table.rst",
            category="Tables",
        ),
        md=layout.table(OUT, "resources", "md"),
    log:
        log("tables", "resources"),
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("resources_table"),
    params:
        code=code_version("resources_table.py"),
    script:
        "../workflow/scripts/resources_table.py"
