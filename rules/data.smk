rule prepare_weights:
    """Download torchvision's ImageNet weights of an architecture (pretrained: true)."""
    output:
        layout.WEIGHTS_FILE.format(root=DATA_ROOT, arch="{arch}"),
    log:
        log("prepare_weights", "{arch}"),
    conda:
        "../envs/msdefense.yaml"
    params:
        code=code_version("prepare_weights.py"),
        root=lambda wc, output: str(Path(output[0]).parent.parent),
    script:
        "../workflow/scripts/prepare_weights.py"


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
        sample_images=SAMPLE_IMAGES,
    script:
        "../workflow/scripts/prepare_dataset.py"
