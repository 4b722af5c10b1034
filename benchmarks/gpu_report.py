"""What benchmarks/gpu_check.sh prints after its rehearsals: the seconds of each rule (sum, jobs,
slowest job) from each run's resources table, and the rough GPU-hour estimate of every full paper
config (msdefense.plan.gpu_hours). Usage: ``python benchmarks/gpu_report.py RUN_DIR [RUN_DIR ...]``
where each RUN_DIR holds ``results/<experiment>/tables/resources.csv``."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from msdefense.plan import gpu_hours
from msdefense.preflight import load_checked

ROOT = Path(__file__).resolve().parent.parent


def main(runs: list[str]) -> None:
    for run in runs:
        for table in sorted(Path(run).glob("results/*/tables/resources.csv")):
            frame = pd.read_csv(table)
            per_rule = (
                frame.groupby("rule")["seconds"]
                .agg(["sum", "count", "max"])
                .sort_values("sum", ascending=False)
            )
            print(f"\n== {table.parent.parent.name}: seconds per rule (one GPU)")
            print(per_rule.round(2).to_string())
    print("\n== rough GPU-hours of each full config (msdefense.plan.gpu_hours: job counts x unit costs)")
    schema = ROOT / "config" / "schema.yaml"
    for path in [ROOT / "config" / "fashion.yaml", *sorted((ROOT / "config" / "paper").glob("*.yaml"))]:
        print(f"{path.stem:22s} {gpu_hours(load_checked(path, schema)):8.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
