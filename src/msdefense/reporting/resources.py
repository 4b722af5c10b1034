"""What every job of a run used: ``tables/resources.csv`` (rule, wildcards, seconds, peak host
and GPU memory, and the memory the rule declares), from Snakemake's benchmark files and the GPU
peak each job writes beside its log (:func:`msdefense.runtime.job`)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..layout import gpu_peak_path
from ..resources import RULES

RESOURCE_COLUMNS = ["rule", "wildcards", "seconds", "peak_host_mib", "peak_gpu_mib", "declared_mem_mb"]


def resources_table(results: str | Path) -> pd.DataFrame:
    """One row per job with a benchmark under ``results/benchmarks/<rule>/<wildcards>.tsv``,
    sorted by rule and wildcards; the host peak (MiB) is the larger of the benchmark's ``max_rss``
    (the job's process tree) and the peak the job process recorded beside its log."""
    from ..io import load_json

    results = Path(results)
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(results / "benchmarks").with_suffix("")
        rule = rel.parts[0]
        bench = pd.read_csv(tsv, sep="\t")
        gpu = gpu_peak_path(results / "logs" / f"{rel}.log")  # not with_suffix: wildcards hold dots (0.5)
        peaks = load_json(gpu) if gpu.exists() else {}
        rows.append(
            {
                "rule": rule,
                "wildcards": "/".join(rel.parts[1:]),
                "seconds": float(bench["s"].max()),
                # a job forked by the job server reports its own peak (not in the benchmarked tree)
                "peak_host_mib": max(float(bench["max_rss"].max()), float(peaks.get("peak_host_mib", 0.0))),
                "peak_gpu_mib": float(peaks["peak_gpu_mib"]) if "peak_gpu_mib" in peaks else math.nan,
                "declared_mem_mb": RULES[rule].mem_mb if rule in RULES else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=RESOURCE_COLUMNS).sort_values(["rule", "wildcards"], ignore_index=True)


def heaviest(table: pd.DataFrame) -> pd.Series:
    """The job with the highest host peak."""
    return table.loc[table["peak_host_mib"].idxmax()]
