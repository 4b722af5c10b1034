"""End-to-end wall time of the workflow at a baseline commit against the current commit, back to
back on this machine, at equal work (the speed issue's acceptance figure).

Each commit gets a fresh clone and its own virtual environment (``make venv``, not timed); the
timed step is what ``make run`` runs at that commit: ``python -m msdefense.launch --cores <cores>``
where the launcher exists (it starts the job server, :mod:`msdefense.jobserver`), else
``.venv/bin/snakemake --cores <cores>``. The baseline runs its own default config;
the candidate runs ``--config`` (default: ``benchmarks/default_at_1fa112b.yaml``, the baseline's
default experiment written in today's schema). Printed: wall seconds, jobs, job-seconds (the sum
of the ``s`` column of every ``benchmarks/**/*.tsv``) and the speed-up, baseline / candidate.

    .venv/bin/python benchmarks/bench_end_to_end.py [--baseline 1fa112b] [--candidate HEAD]
        [--config benchmarks/default_at_1fa112b.yaml] [--workdir /tmp/e2e] [--cores all]

It takes about two default runs plus two installs (tens of minutes on 2 cores); run it on an
otherwise idle machine, since both runs must see the same load.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def job_seconds(clone: Path) -> tuple[int, float]:
    """Jobs and summed job wall seconds from the run's Snakemake benchmark files."""
    files = sorted(clone.glob("results/*/benchmarks/**/*.tsv"))
    total = 0.0
    for path in files:
        with path.open() as handle:
            total += sum(float(row["s"]) for row in csv.DictReader(handle, delimiter="\t"))
    return len(files), total


def run_commit(*, commit: str, workdir: Path, config: Path | None, cores: str) -> dict[str, object]:
    """Clone ``commit`` into ``workdir``, install, and time one Snakemake run of it."""
    clone = workdir / commit[:12]
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    _git("checkout", "-q", commit, cwd=clone)
    subprocess.run(["make", "venv"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    if (clone / "src" / "msdefense" / "launch.py").is_file():  # make run's route at that commit
        command = [".venv/bin/python", "-m", "msdefense.launch", "--cores", cores]
    else:
        command = [".venv/bin/snakemake", "--cores", cores]
    if config is not None:
        target = clone / "benchmarks" / config.name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(config, target)
        command += ["--configfile", str(target.relative_to(clone))]
    log = workdir / f"{commit[:12]}.log"
    start = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run(command, cwd=clone, check=True, stdout=handle, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    jobs, seconds = job_seconds(clone)
    return {
        "commit": commit,
        "wall_s": round(wall, 1),
        "jobs": jobs,
        "job_seconds": round(seconds, 1),
        "log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="1fa112b")
    parser.add_argument("--candidate", default="HEAD")
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks" / "default_at_1fa112b.yaml")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/e2e"))
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    if not args.config.is_file():
        parser.error(f"--config {args.config}: no such file")
    args.workdir.mkdir(parents=True, exist_ok=True)
    baseline = _git("rev-parse", args.baseline)
    candidate = _git("rev-parse", args.candidate)
    results = {
        "baseline": run_commit(commit=baseline, workdir=args.workdir, config=None, cores=args.cores),
        "candidate": run_commit(commit=candidate, workdir=args.workdir, config=args.config, cores=args.cores),
    }
    results["speedup_wall"] = round(results["baseline"]["wall_s"] / results["candidate"]["wall_s"], 2)
    results["speedup_job_seconds"] = round(
        results["baseline"]["job_seconds"] / results["candidate"]["job_seconds"], 2
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
