rule measure_latency:
    """ms per query of every defense next to the undefended pass, batch 1 and 64, one process.

    Latency does not depend on the replicate: it is measured on the first seed's victims.

    Its thread count is latency.threads (2, the papers' comparison setting); on a 2-core machine
    that also keeps other jobs from running beside it and skewing the timings.
    """
    input:
        victim=lambda wc: (
            [victim_model(wc.victim, SEEDS[0])]
            if wc.victim in config["victims"]
            else []
        ),
    output:
        latency=out(layout.LATENCY),
    log:
        log("measure_latency", "{victim}"),
    benchmark:
        bench("measure_latency", "{victim}")
    conda:
        "../envs/msdefense.yaml"
    threads: config["latency"]["threads"]
    resources:
        **needs("measure_latency"),
    params:
        code=code_version(
            "measure_latency.py",
            defenses=[d["method"] for d in config["defenses"].values()],
        ),
        reference=lambda wc: config["latency"]["reference_victims"].get(wc.victim),
        defenses=config["defenses"],
        latency=config["latency"],
        seed=SEEDS[0],
        device=config["device"],
    script:
        "../workflow/scripts/measure_latency.py"
