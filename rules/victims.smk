rule train_victim:
    """Train a victim (teacher) with the recipe of the DCP code (Khaled et al. 2023)."""
    input:
        data=victim_data,
        weights=victim_weights,
    output:
        model=out(layout.VICTIM_MODEL),
        metrics=out(layout.VICTIM_METRICS),
        history=out(layout.VICTIM_HISTORY),
    log:
        seed_log("train_victim", "{victim}"),
    benchmark:
        seed_bench("train_victim", "{victim}")
    wildcard_constraints:
        victim=TRAINED,
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("train_victim"),
    params:
        **COMMON,
        code=code_version("train_victim.py"),
        victim_cfg=victim_cfg,
    script:
        "../workflow/scripts/train_victim.py"


rule quantize_victim:
    """int8 copy of a trained victim: PTQ or QAT, FX graph mode, x86 (server) or qnnpack (edge)."""
    input:
        data=victim_data,
        source=source_model,
    output:
        model=out(layout.VICTIM_MODEL),
        metrics=out(layout.VICTIM_METRICS),
    log:
        seed_log("quantize_victim", "{victim}"),
    benchmark:
        seed_bench("quantize_victim", "{victim}")
    wildcard_constraints:
        victim=QUANTIZED,
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("quantize_victim"),
    params:
        **COMMON,
        code=code_version("quantize_victim.py"),
        victim_cfg=victim_cfg,
    script:
        "../workflow/scripts/quantize_victim.py"


rule train_misleader_member:
    """One MISLEADER member: distilled from the teacher, pushed away from an inner attacker."""
    input:
        data=victim_data,
        teacher=lambda wc: victim_model(teacher(wc), wc.seed),
    output:
        model=out(layout.MEMBER_MODEL),
        metrics=out(layout.MEMBER_METRICS),
        history=out(layout.MEMBER_HISTORY),
    log:
        seed_log("train_misleader_member", "{victim}/{member}"),
    benchmark:
        seed_bench("train_misleader_member", "{victim}/{member}")
    wildcard_constraints:
        victim=MISLEADER,
        member="[0-9]+",
    priority: 10
    conda:
        "../envs/msdefense.yaml"
    threads: THREADS
    resources:
        **needs("train_misleader_member"),
    params:
        **COMMON,
        code=code_version("train_misleader_member.py"),
        victim_cfg=victim_cfg,
    script:
        "../workflow/scripts/train_misleader_member.py"


rule build_ensemble:
    """The MISLEADER victim: soft voting over its members' softmax outputs."""
    input:
        members=lambda wc: expand(
            rules.train_misleader_member.output.model,
            victim=wc.victim,
            seed=wc.seed,
            member=range(len(config["victims"][wc.victim]["misleader"]["members"])),
        ),
        teacher_metrics=lambda wc: out(
            layout.VICTIM_METRICS, victim=teacher(wc), seed=wc.seed
        ),
    output:
        model=out(layout.VICTIM_MODEL),
        metrics=out(layout.VICTIM_METRICS),
    log:
        seed_log("build_ensemble", "{victim}"),
    benchmark:
        seed_bench("build_ensemble", "{victim}")
    wildcard_constraints:
        victim=MISLEADER,
    priority: 10
    conda:
        "../envs/msdefense.yaml"
    threads: 1
    resources:
        **needs("build_ensemble"),
    params:
        **COMMON,
        code=code_version("build_ensemble.py"),
        victim_cfg=victim_cfg,
    script:
        "../workflow/scripts/build_ensemble.py"
