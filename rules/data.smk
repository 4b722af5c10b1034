localrules:
    prepare_dataset,


rule prepare_dataset:
    """Download a paper dataset into the data root (compute nodes often have no network)."""
    output:
        touch(layout.DATASET_FLAG.format(root=DATA_ROOT, dataset="{dataset}")),
    log:
        log("prepare_dataset", "{dataset}"),
    conda:
        "../envs/msdefense.yaml"
    params:
        code=code_version("prepare_dataset.py"),
        root=lambda wc, output: str(Path(output[0]).parent.parent),
    script:
        "../workflow/scripts/prepare_dataset.py"
