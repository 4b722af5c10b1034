rule tables:
    """KnockoffNets table, GRAD² interpolation table and the utility/extraction trade-off figure."""
    input:
        knockoff_metrics(),
    output:
        csv=report(
            f"{OUT}/tables/knockoff.csv",
            caption="../workflow/report/knockoff_table.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/knockoff.md",
        interpolation=report(
            f"{OUT}/tables/interpolation.csv",
            caption="../workflow/report/interpolation_table.rst",
            category="Tables",
        ),
        interpolation_md=f"{OUT}/tables/interpolation.md",
        png=report(
            f"{OUT}/figures/knockoff_tradeoff.png",
            caption="../workflow/report/knockoff_tradeoff.rst",
            category="Figures",
        ),
        pdf=f"{OUT}/figures/knockoff_tradeoff.pdf",
    log:
        f"{OUT}/logs/tables/knockoff.log",
    benchmark:
        f"{OUT}/benchmarks/tables/knockoff.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/tables.py"


rule latency_table:
    """Latency table (ms per query, overhead vs the undefended pass, slowdown vs DCP) and figure."""
    input:
        expand(f"{OUT}/latency/{{victim}}.json", victim=latency_victims()),
    output:
        csv=report(
            f"{OUT}/tables/latency.csv",
            caption="../workflow/report/latency_table.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/latency.md",
        png=report(
            f"{OUT}/figures/latency.png",
            caption="../workflow/report/latency_figure.rst",
            category="Figures",
        ),
        pdf=f"{OUT}/figures/latency.pdf",
    log:
        f"{OUT}/logs/tables/latency.log",
    benchmark:
        f"{OUT}/benchmarks/tables/latency.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/latency_table.py"


rule datafree_table:
    """Data-free (DFME / MAZE) table and its utility/extraction figure."""
    input:
        datafree_metrics(),
    output:
        csv=report(
            f"{OUT}/tables/datafree.csv",
            caption="../workflow/report/datafree_table.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/datafree.md",
        png=report(
            f"{OUT}/figures/datafree_tradeoff.png",
            caption="../workflow/report/datafree_tradeoff.rst",
            category="Figures",
        ),
        pdf=f"{OUT}/figures/datafree_tradeoff.pdf",
    log:
        f"{OUT}/logs/tables/datafree.log",
    benchmark:
        f"{OUT}/benchmarks/tables/datafree.tsv"
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/datafree_table.py"


rule quantization_table:
    """Paper A §11: fp32 vs int8 victims (accuracy, weight size, ms per query)."""
    input:
        victims=lambda wc: expand(
            f"{OUT}/victims/{{victim}}/metrics.json",
            victim=victims_of_kind(config, "quantize"),
        ),
        latency=expand(f"{OUT}/latency/{{victim}}.json", victim=latency_victims()),
    output:
        csv=report(
            f"{OUT}/tables/quantization.csv",
            caption="../workflow/report/quantization_table.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/quantization.md",
    log:
        f"{OUT}/logs/tables/quantization.log",
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/quantization_table.py"


rule misleader_table:
    """MISLEADER's Table B: clone accuracy of every attack on the ensemble and on the teacher
    behind each baseline defense at matched defended accuracy."""
    input:
        ensembles=lambda wc: expand(
            f"{OUT}/victims/{{victim}}/metrics.json",
            victim=victims_of_kind(config, "misleader"),
        ),
        knockoff=knockoff_metrics(),
        datafree=datafree_metrics(),
    output:
        csv=report(
            f"{OUT}/tables/misleader.csv",
            caption="../workflow/report/misleader_table.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/misleader.md",
        png=report(
            f"{OUT}/figures/misleader.png",
            caption="../workflow/report/misleader_figure.rst",
            category="Figures",
        ),
        pdf=f"{OUT}/figures/misleader.pdf",
    log:
        f"{OUT}/logs/tables/misleader.log",
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/misleader_table.py"
