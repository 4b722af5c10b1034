rule tables:
    """KnockoffNets table (CSV + Markdown) and the utility/extraction trade-off figure."""
    input:
        knockoff_metrics(),
    output:
        csv=report(
            f"{OUT}/tables/knockoff.csv",
            caption="../workflow/report/knockoff_table.rst",
            category="Tables",
        ),
        md=f"{OUT}/tables/knockoff.md",
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
