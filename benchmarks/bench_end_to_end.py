"""End-to-end wall time of the workflow at a baseline commit against the current commit, back to
back on this machine, at equal work (the speed issue's acceptance figure).

Both commits get a fresh clone and their own virtual environment (``make venv``, not timed); the
timed step is what ``make run`` runs at that commit: ``python -m msdefense.launch --cores <cores>``
where the launcher exists (it starts the job server, :mod:`msdefense.jobserver`), else
``.venv/bin/snakemake --cores <cores>``. The baseline runs its own default config;
the candidate runs ``--config`` (default: ``benchmarks/default_at_1fa112b.yaml``, the baseline's
default experiment written in today's schema; several files are merged in order, as Snakemake
merges config files); then, as a third run, the candidate again with ``--longer``
(``benchmarks/longer_datafree.yaml``) merged on top: the same work with longer data-free attacks,
written to its own experiment. Printed per run: wall seconds, jobs,
job-seconds (the sum of the ``s`` column of every ``benchmarks/**/*.tsv``), the undefended data-free
clones' accuracy as a fraction of the victim's, and the speed-ups, baseline / candidate.

    .venv/bin/python benchmarks/bench_end_to_end.py [--baseline 1fa112b] [--candidate HEAD]
        [--config benchmarks/default_at_1fa112b.yaml ...] [--longer benchmarks/longer_datafree.yaml ... | none]
        [--workdir /tmp/e2e] [--cores all]

Today's default at one seed, then with the DFME budget the 2x margin leaves (docs/findings.md,
Speed, "the default at one seed"):

    .venv/bin/python benchmarks/bench_end_to_end.py --workdir /tmp/e2e6 \
        --config config/config.yaml benchmarks/one_seed.yaml --longer benchmarks/one_seed_dfme700k.yaml

It takes about three default runs plus two installs (tens of minutes on 2 cores); run it on an
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


def job_seconds(results: Path) -> tuple[int, float]:
    """Jobs and summed job wall seconds from a run's Snakemake benchmark files."""
    files = sorted(results.glob("benchmarks/**/*.tsv"))
    total = 0.0
    for path in files:
        with path.open() as handle:
            total += sum(float(row["s"]) for row in csv.DictReader(handle, delimiter="\t"))
    return len(files), total


def undefended_datafree(results: Path) -> dict[str, float]:
    """clone_acc / defender_acc of the undefended data-free clones of digits_lenet5 (the issue's
    figure: "≥ 0.95 of the victim's accuracy"), per attack, from the run's datafree table."""
    table = results / "tables" / "datafree.csv"
    if not table.is_file():
        return {}
    with table.open() as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if r["victim"] == "digits_lenet5"
            and r["defense"] == "undefended"
            and r["attack"] in ("dfme", "maze")
        ]
    return {
        f"{r['attack']}_clone_over_victim": round(float(r["clone_acc"]) / float(r["defender_acc"]), 4)
        for r in rows
    }


def checkout(*, commit: str, workdir: Path) -> Path:
    """A fresh clone of ``commit`` in ``workdir`` with its own virtual environment (not timed)."""
    clone = workdir / commit[:12]
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    _git("checkout", "-q", commit, cwd=clone)
    subprocess.run(["make", "venv"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    return clone


def timed_run(*, clone: Path, configs: list[Path], cores: str) -> dict[str, object]:
    """Time one run of make run's route at the clone's commit with ``configs`` (none: its default);
    its log is named after the configs."""
    if (clone / "src" / "msdefense" / "launch.py").is_file():  # make run's route at that commit
        command = [".venv/bin/python", "-m", "msdefense.launch", "--cores", cores]
    else:
        command = [".venv/bin/snakemake", "--cores", cores]
    if configs:
        command.append("--configfile")
        for config in configs:
            target = clone / "benchmarks" / config.name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(config, target)
            command.append(str(target.relative_to(clone)))
    before = set((clone / "results").glob("*")) if (clone / "results").is_dir() else set()
    tag = "+".join(c.stem for c in configs) or "default"
    log = clone.parent / f"{clone.name}-{tag}.log"
    start = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run(command, cwd=clone, check=True, stdout=handle, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    (results,) = set((clone / "results").glob("*")) - before  # each run writes a new experiment
    jobs, seconds = job_seconds(results)
    return {
        "commit": _git("rev-parse", "HEAD", cwd=clone),
        "configs": [c.name for c in configs],
        "wall_s": round(wall, 1),
        "jobs": jobs,
        "job_seconds": round(seconds, 1),
        **undefended_datafree(results),
        "log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="1fa112b")
    parser.add_argument("--candidate", default="HEAD")
    for flag, default, text in (
        ("--config", "default_at_1fa112b.yaml", "the candidate's config files, merged in order"),
        ("--longer", "longer_datafree.yaml", "overrides on top of --config, a third run ('none' to skip)"),
    ):
        parser.add_argument(flag, type=Path, nargs="+", default=[REPO / "benchmarks" / default], help=text)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/e2e"))
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    longer = None if [str(p) for p in args.longer] == ["none"] else args.longer
    every = [*args.config, *(longer or [])]
    for path in every:
        if not path.is_file():
            parser.error(f"{path}: no such file")
    names = [p.name for p in every]
    if len(set(names)) < len(names):  # each is copied to the clone's benchmarks/ under its name
        parser.error(f"config files need distinct names, got {names}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    baseline = checkout(commit=_git("rev-parse", args.baseline), workdir=args.workdir)
    candidate = checkout(commit=_git("rev-parse", args.candidate), workdir=args.workdir)
    results: dict[str, object] = {
        "baseline": timed_run(clone=baseline, configs=[], cores=args.cores),
        "candidate": timed_run(clone=candidate, configs=args.config, cores=args.cores),
    }
    runs = ["candidate"]
    if longer is not None:
        results["candidate_longer"] = timed_run(clone=candidate, configs=every, cores=args.cores)
        runs.append("candidate_longer")
    base = results["baseline"]
    for run in runs:
        for key in ("wall", "job_seconds"):
            field = "wall_s" if key == "wall" else key
            results[f"speedup_{key}_{run}"] = round(base[field] / results[run][field], 2)  # type: ignore[index,operator]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
