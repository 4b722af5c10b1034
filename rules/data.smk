localrules:
    prepare_dataset,


rule prepare_dataset:
    """Download a paper dataset into the data root (compute nodes often have no network)."""
    output:
        touch(f"{DATA_ROOT}/{{dataset}}/.prepared"),
    log:
        f"{OUT}/logs/prepare_dataset/{{dataset}}.log",
    conda:
        "../envs/msdefense.yaml"
    params:
        root=lambda wildcards, output: str(Path(output[0]).parent.parent),
    script:
        "../workflow/scripts/prepare_dataset.py"
