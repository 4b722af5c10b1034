"""Every experiment config validates, its dry run resolves the jobs the config asks for (computed
from the config, msdefense.plan), `snakemake --lint` is clean for it, and config/README.md quotes
the paper configs' job counts as the code computes them."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from workflow_runs import ROOT, SNAKEMAKE, limit

from msdefense.plan import gpu_hours, job_counts
from msdefense.preflight import load_checked

CONFIGS = [
    ROOT / "config" / "config.yaml",
    ROOT / "config" / "fashion.yaml",
    *sorted((ROOT / "config" / "paper").glob("*.yaml")),
]
CONFIGS.append(ROOT / "tests" / "data" / "tiny.yaml")
CONFIGS.append(ROOT / "benchmarks" / "default_at_1fa112b.yaml")  # bench_end_to_end.py's equal-work config
PAPER_TABLES = {"khaled_knockoff", "khaled_cub200", "khaled_datafree", "khaled_quantized"}
PAPER_TABLES |= {"misleader_mnist", "misleader_cifar10", "misleader_cifar100", "mazeika_grad2"}


def resolved(path: Path) -> dict:
    return load_checked(path, ROOT / "config" / "schema.yaml")


def _snakemake(
    path: Path, workdir: Path, *args: str, merged: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    """Snakemake on ``path`` (with the ``merged`` configs on top, as Snakemake merges them)."""
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(path), *map(str, merged), "--cores", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=limit(600))


def _planned(proc: subprocess.CompletedProcess) -> Counter:
    """The jobs per rule of a ``--dry-run --quiet rules``."""
    rows = re.findall(r"^([a-z_]+)\s+(\d+)\s*$", proc.stdout + proc.stderr, flags=re.MULTILINE)
    return Counter({rule: int(n) for rule, n in rows if rule not in ("total", "all")})


def test_every_paper_table_family_has_a_config() -> None:
    assert {p.stem for p in CONFIGS if p.parent.name == "paper"} == PAPER_TABLES


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_dry_run_plans_the_jobs_the_config_asks_for(path: Path, tmp_path: Path) -> None:
    expected = job_counts(resolved(path))
    proc = _snakemake(path, tmp_path, "--dry-run", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _planned(proc) == expected


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_lints_clean(path: Path, tmp_path: Path) -> None:
    proc = _snakemake(path, tmp_path, "--lint")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_config_readme_quotes_the_job_counts_and_estimates() -> None:
    text = (ROOT / "config" / "README.md").read_text()
    rows = dict(re.findall(r"^\| `config/paper/([a-z0-9_]+)\.yaml` \| (.+) \|$", text, flags=re.MULTILINE))
    assert set(rows) == PAPER_TABLES
    for name, row in rows.items():
        config = resolved(ROOT / "config" / "paper" / f"{name}.yaml")
        jobs = job_counts(config)
        cells = [c.strip() for c in row.split("|")]
        assert cells[0] == str(sum(jobs.values())), name
        assert cells[1] == ", ".join(f"{rule} {n}" for rule, n in sorted(jobs.items())), name
        assert cells[2] == f"~{gpu_hours(config):,.0f}", name


def _merged(tmp_path: Path, *paths: Path) -> dict:
    """The config Snakemake runs for ``--configfile`` with ``paths`` (later files update earlier
    ones, as :func:`snakemake.utils.update_config` merges them), resolved and checked."""
    import yaml
    from snakemake.utils import update_config

    merged: dict = {}
    for path in paths:
        update_config(merged, yaml.safe_load(path.read_text()))
    out = tmp_path / f"merged_{len(paths)}.yaml"
    out.write_text(yaml.safe_dump(merged, allow_unicode=True))
    return resolved(out)


def test_longer_datafree_config_merges_onto_the_equal_work_one(tmp_path: Path) -> None:
    """bench_end_to_end.py --longer: benchmarks/longer_datafree.yaml on top of the equal-work config
    (merged as Snakemake merges config files) changes data-free attack settings and the experiment
    name, nothing else, and not the jobs."""
    base = ROOT / "benchmarks" / "default_at_1fa112b.yaml"
    longer = ROOT / "benchmarks" / "longer_datafree.yaml"
    before, after = resolved(base), _merged(tmp_path, base, longer)
    assert after["datafree"]["attacks"] != before["datafree"]["attacks"]
    for config in (before, after):
        del config["datafree"]["attacks"], config["experiment"]
    assert after == before
    proc = _snakemake(base, tmp_path, "--dry-run", "--quiet", "rules", merged=(longer,))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _planned(proc) == job_counts(resolved(base))


def test_one_seed_configs_merge_onto_the_default(tmp_path: Path) -> None:
    """bench_end_to_end.py --config config/config.yaml benchmarks/one_seed.yaml --longer
    benchmarks/one_seed_dfme700k.yaml: the first override keeps seed 0 only, the second changes
    DFME's query budget only (and each the experiment name), and Snakemake plans the merged jobs."""
    default = ROOT / "config" / "config.yaml"
    one_seed, dfme = ROOT / "benchmarks" / "one_seed.yaml", ROOT / "benchmarks" / "one_seed_dfme700k.yaml"
    base, seed0, longer = (
        resolved(default),
        _merged(tmp_path, default, one_seed),
        _merged(tmp_path, default, one_seed, dfme),
    )
    budget = [c["datafree"]["attacks"]["dfme"].pop("query_budget") for c in (base, seed0, longer)]
    assert seed0["seeds"] == [0] and base["seeds"] != [0] and budget[2] > budget[1] == budget[0]
    for config in (base, seed0, longer):
        del config["experiment"], config["seeds"]
    assert base == seed0 == longer
    proc = _snakemake(default, tmp_path, "--dry-run", "--quiet", "rules", merged=(one_seed, dfme))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _planned(proc) == job_counts(_merged(tmp_path, default, one_seed, dfme))


def test_the_attacker_overlay_adds_the_attacker_axis_and_cuts_only_what_it_says(tmp_path: Path) -> None:
    """config/fashion_attackers.yaml on top of config/fashion.yaml: its own experiment folder, the
    two API-granularity defenses and the defense-aware attacker added; cut, as its comment says,
    only breadth (three of the five seeds); every other setting, the attacks' budgets and recipes
    included, is fashion.yaml's."""
    fashion, overlay = ROOT / "config" / "fashion.yaml", ROOT / "config" / "fashion_attackers.yaml"
    base, merged = resolved(fashion), _merged(tmp_path, fashion, overlay)
    assert merged["experiment"] != base["experiment"]
    assert set(merged["defenses"]) - set(base["defenses"]) == {"TopK", "Rounding"}
    assert merged["knockoff"]["labels"] == ["soft", "argmax", "restored"]
    assert "restored_defenses" not in merged["knockoff"]  # against every defense
    assert set(merged["seeds"]) < set(base["seeds"]) and len(merged["seeds"]) == 3
    for config in (base, merged):
        del config["experiment"], config["seeds"]
        for key in ("labels", "defense_aware"):
            config["knockoff"].pop(key, None)
    for name in ("TopK", "Rounding"):
        del merged["defenses"][name]
    assert merged == base
    proc = _snakemake(fashion, tmp_path, "--dry-run", "--quiet", "rules", merged=(overlay,))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _planned(proc) == job_counts(_merged(tmp_path, fashion, overlay))
