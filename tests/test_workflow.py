"""End to end: Snakemake runs the tiny config, writes the table and figure, then has nothing to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_runs import ROOT, SNAKEMAKE, limit, run_tiny

from msdefense.io import load_json
from msdefense.reporting import (
    DATAFREE_COLUMNS,
    DATAFREE_KEYS,
    INTERVAL_METRICS,
    KNOCKOFF_COLUMNS,
    KNOCKOFF_KEYS,
    MISLEADER_COLUMNS,
    MISLEADER_KEYS,
    QUANTIZATION_COLUMNS,
    QUANTIZATION_KEYS,
    VERDICTS,
    read_table,
    verdict,
)
from msdefense.reporting.claims import ATTACK_PAPERS, CLAIMS_COLUMNS, rule_threshold
from msdefense.resources import LOCAL_RULES

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_tiny(workdir, "--cores", "2", *args)


@pytest.fixture
def finished_run(tiny_run: Path) -> Path:
    return tiny_run


SEEDS = (3, 4)  # tests/data/tiny.yaml
TABLE_RULES = set(LOCAL_RULES) - {"prepare_dataset", "prepare_weights"}


def _summary_columns(columns: list[str], metrics=INTERVAL_METRICS) -> list[str]:
    """A per-seed table's columns as its summary over seeds has them."""
    out = []
    for c in columns:
        if c == "seed":
            out.append("n_seeds")
            continue
        out.append(c)
        if c in metrics:
            out += [f"{c}_ci_low", f"{c}_ci_high"]
    return out


def test_tables_have_one_row_per_setting_and_one_per_seed_beside(finished_run: Path) -> None:
    for name, keys, columns in (
        ("knockoff", KNOCKOFF_KEYS, [*KNOCKOFF_COLUMNS, "method", "decided_by"]),
        ("datafree", DATAFREE_KEYS, DATAFREE_COLUMNS),
        ("misleader", MISLEADER_KEYS, MISLEADER_COLUMNS),
        ("quantization", QUANTIZATION_KEYS, QUANTIZATION_COLUMNS),
    ):
        per_seed = pd.read_csv(finished_run / "tables" / f"{name}_seeds.csv")
        summary = pd.read_csv(finished_run / "tables" / f"{name}.csv")
        seeded = [*keys, "seed", *(c for c in columns if c not in keys)]
        assert list(per_seed.columns) == seeded, name
        metric = "accuracy" if name == "quantization" else "clone_acc"
        metrics = [metric] if name == "quantization" else INTERVAL_METRICS
        assert list(summary.columns) == _summary_columns(seeded, metrics), name
        assert sorted(set(per_seed["seed"])) == list(SEEDS), name
        assert len(per_seed) == len(SEEDS) * len(summary) and (summary["n_seeds"] == len(SEEDS)).all(), name
        means = per_seed.groupby(keys, sort=False, dropna=False)[metric].mean().to_numpy()
        np.testing.assert_allclose(summary[metric].to_numpy(), means)
        held = summary.dropna(subset=[f"{metric}_ci_low"])
        assert len(held) > 0 and (held[f"{metric}_ci_low"] <= held[metric]).all(), name
        assert (held[metric] <= held[f"{metric}_ci_high"]).all(), name


def test_table_has_one_row_per_run(finished_run: Path) -> None:
    both = pd.read_csv(finished_run / "tables" / "knockoff.csv")
    # the label-only attacker runs next to the soft-label one, behind the same answers, and the
    # worst case over the two is the better clone of each seed, named by decided_by
    assert set(both["labels"]) == {"soft", "argmax", "worst"}
    seeds = pd.read_csv(finished_run / "tables" / "knockoff_seeds.csv")
    keyed = seeds.pivot_table(index=["victim", "transfer", "defense", "param", "seed"], columns="labels",
                              values="clone_acc", aggfunc="first")  # fmt: skip
    np.testing.assert_array_equal(keyed["worst"], keyed[["soft", "argmax"]].max(axis=1))
    worst = seeds[seeds["labels"] == "worst"].set_index(["victim", "transfer", "defense", "param", "seed"])
    picked = [keyed.loc[i, kind] for i, kind in worst["decided_by"].items()]
    np.testing.assert_array_equal(worst["clone_acc"], picked)
    keys = ["victim", "transfer", "defense", "param"]
    soft, argmax = (both[both["labels"] == k].set_index(keys).sort_index() for k in ("soft", "argmax"))
    assert soft.index.equals(argmax.index)
    np.testing.assert_array_equal(soft["defender_acc"], argmax["defender_acc"])
    full = both[both["labels"] == "soft"]
    # derived victims are attacked behind their own subset of defenses
    assert len(full[full["victim"] == "tiny_misleader"]) == 1
    assert set(full[full["victim"] == "tiny_int8"]["defense"]) == {"undefended", "GRAD"}
    table = full[full["victim"] == "digits_tiny"]
    assert len(table) == 1 + 3 + 1 + 1 + 1  # undefended, DCP ×3, AM, MAD, GRAD
    assert set(table["defense"]) == {"undefended", "DCP", "AM", "MAD", "GRAD"}
    for col in ("defender_acc", "clone_acc", "fidelity"):
        assert table[col].between(0, 1).all()
    assert (table["queries"] == 400).all()
    assert (table[table["defense"] == "undefended"]["l1_distance"] == 0).all()
    dcp = table[table["defense"] == "DCP"].set_index("param")
    assert dcp.loc[0.0, "l1_distance"] == 0  # β = 0 leaves answers unchanged
    assert dcp.loc[1.5, "l1_distance"] > 0  # β = 1.5 perturbs every answer
    for name in ("MAD", "GRAD"):  # ε-budget methods stay within their budget
        assert 0 < table[table["defense"] == name]["l1_distance"].iloc[0] <= 0.5 + 1e-6
    assert (finished_run / "tables" / "knockoff.md").read_text().startswith("| victim | transfer |")


def test_budget_tables_end_where_the_attack_tables_do(finished_run: Path) -> None:
    """The budget curves: KnockoffNets at 30% of the 400 queries (tiny.yaml) and every query, at
    each defense's strongest value (strongest_only: [budgets]); the data-free checkpoints up to the
    spent budget; a figure per attacked victim."""
    tables = finished_run / "tables"
    per_seed = pd.read_csv(tables / "budget_seeds.csv")
    curves = pd.read_csv(tables / "budget_curves.csv")
    table = pd.read_csv(tables / "budget.csv")
    knock = per_seed[per_seed["attack"] == "knockoff"]
    assert set(knock.loc[knock["defense"] == "DCP", "param"].astype(float)) == {1.5}  # of 0, 0.5, 1.5
    assert set(knock.groupby(["victim", "transfer", "defense", "param", "seed"])["queries"].apply(tuple)) == {
        (120, 400)
    }
    # the full-budget point is the soft-label clone of the KnockoffNets table, seed by seed
    soft = pd.read_csv(tables / "knockoff_seeds.csv").query("labels == 'soft'")
    keys = ["victim", "transfer", "defense", "param", "seed"]
    full = knock[knock["queries"] == 400].astype({"param": float}).set_index(keys)["clone_acc"].sort_index()
    np.testing.assert_allclose(full, soft.set_index(keys)["clone_acc"].sort_index().loc[full.index])
    free = per_seed[per_seed["transfer"] == "-"]
    assert set(free["attack"]) == {"dfme", "maze"}
    spent = pd.read_csv(tables / "datafree_seeds.csv").groupby("attack")["queries"].max()
    assert (free.groupby("attack")["queries"].max() <= spent.loc[["dfme", "maze"]]).all()
    assert len(curves) == len(per_seed.drop_duplicates([*keys[:4], "attack", "queries"]))
    assert (table["budgets"] >= 2).all() and table["auc"].between(0, 1).all()
    for victim in set(per_seed["victim"]):
        assert (finished_run / "figures" / f"budget_{victim}.png").stat().st_size > 0


def test_datafree_table_defends_every_query(finished_run: Path) -> None:
    table = pd.read_csv(finished_run / "tables" / "datafree.csv")
    # {dfme, maze} × ({undefended, GRAD 0.5} on the victim + the undefended ensemble)
    assert len(table) == 2 * (2 + 1)
    assert set(table["attack"]) == {"dfme", "maze"}
    for col in ("defender_acc", "clone_acc", "fidelity", "clone_acc_final"):
        assert table[col].between(0, 1).all()
    # DFME costs 32·(2 + 5) = 224 per iteration, MAZE 16·(11 + 4) = 240: never past 2000
    assert (table["queries"] <= 2000).all() and (table["queries"] > 0).all()
    assert set(table[table["attack"] == "dfme"]["queries"]) == {224 * (2000 // 224)}
    knockoff = pd.read_csv(finished_run / "tables" / "knockoff.csv")
    knockoff = knockoff[knockoff["labels"] == "soft"].set_index(["victim", "defense", "param"])
    for row in table.itertuples():  # the same defended test answers as the KnockoffNets table
        assert row.defender_acc == knockoff.loc[(row.victim, row.defense, row.param), "defender_acc"]
    run = finished_run / "seed3" / "attacks" / "datafree" / "dfme" / "digits_tiny" / "GRAD" / "0.5"
    metrics = load_json(run / "metrics.json")
    assert metrics["oracle_queries"] == metrics["queries"]  # the oracle counted every probe
    assert (finished_run / "figures" / "datafree_tradeoff.png").stat().st_size > 0


def test_interpolation_and_latency_tables(finished_run: Path) -> None:
    interp = pd.read_csv(finished_run / "tables" / "interpolation.csv")
    assert set(interp["defense"]) == {"DCP", "AM", "MAD", "GRAD"}
    assert set(interp["match"]) <= {
        "interpolated",
        "within",
        "unmatched",
        "interpolated|within",
        "within|interpolated",
    }
    assert len(pd.read_csv(finished_run / "tables" / "interpolation_seeds.csv")) == len(SEEDS) * len(interp)
    latency = pd.read_csv(finished_run / "tables" / "latency.csv")
    assert set(latency["victim"]) == {
        "digits_tiny",
        "tiny_int8",
        "resnet20_cifar10",
    }  # latency.victims + reference
    assert set(latency["batch_size"]) == {1, 8}
    assert len(latency) == 3 * 2 * 5  # victims × batch sizes × defenses
    assert (latency["ms_per_query"] > 0).all()
    # every ratio comes with its interval, and the interval holds the ratio
    assert (latency["overhead_ci_low"] <= latency["overhead_vs_none"]).all()
    assert (latency["overhead_vs_none"] <= latency["overhead_ci_high"]).all()
    assert latency["reliable"].isin([True, False]).all() and (latency["repeats"] >= 3).all()
    dcp = latency[latency["defense"] == "DCP"]
    assert (dcp["slowdown_vs_dcp"] == 1).all()
    assert (finished_run / "figures" / "latency.png").stat().st_size > 1000
    for seed in SEEDS:
        models = finished_run / f"seed{seed}" / "defender_models" / "digits_tiny"
        assert (models / "photos" / "surrogate_e1.safetensors").exists()
        assert (models / "misinformation.safetensors").exists()


def test_quantized_victim_table(finished_run: Path) -> None:
    table = pd.read_csv(finished_run / "tables" / "quantization.csv")
    rows = table.set_index("victim")
    assert rows.loc["digits_tiny", "precision"] == "fp32" and rows.loc["tiny_int8", "precision"] == "int8"
    assert rows.loc["tiny_int8", "size_mb"] <= 0.3 * rows.loc["digits_tiny", "size_mb"]
    assert (table["ms_per_query_b1"] > 0).all() and table["ms_per_query_b64"].isna().all()  # tiny: b 1, 8
    # GRAD on the int8 victim uses the fp32 source's surrogate: no surrogate of its own
    assert not (finished_run / "seed3" / "defender_models" / "tiny_int8").exists()


def test_misleader_table(finished_run: Path) -> None:
    table = pd.read_csv(finished_run / "tables" / "misleader.csv")
    assert set(table["attack"]) == {"knockoff/photos", "knockoff_argmax/photos", "dfme", "maze"}
    for attack, part in table.groupby("attack"):
        assert list(part["row"])[0] == "undefended" and list(part["row"])[-1] == "MISLEADER", attack
        assert part[part["row"] == "MISLEADER"]["victim"].item() == "tiny_misleader"
    ensemble = load_json(finished_run / "seed3" / "victims" / "tiny_misleader" / "metrics.json")
    assert len(ensemble["member_test_acc"]) == 2
    assert (finished_run / "figures" / "misleader.png").stat().st_size > 1000


def test_claims_table_gives_a_verdict_by_its_rule(finished_run: Path) -> None:
    table = read_table(finished_run / "tables" / "claims.csv")
    assert list(table.columns) == CLAIMS_COLUMNS and len(table) >= 8
    assert set(table["verdict"]) <= set(VERDICTS)
    for row in table.itertuples():  # the verdict follows from the interval and the rule's threshold
        threshold, above = rule_threshold(row.rule)
        if row.verdict in ("not testable", "identical"):  # set by the data, with the reason in the note
            assert isinstance(row.note, str) and row.note, row
            continue
        expected = verdict(row.ci_low, row.ci_high, threshold, above=above)
        assert row.verdict == expected, row
    defense_papers = {"Khaled et al. 2023 (DCP)", "Cheng et al. 2025 (MISLEADER)"}
    assert defense_papers <= set(table["paper"]) <= defense_papers | set(ATTACK_PAPERS.values())
    # the attack papers' rows: whether each attack works undefended, with the paper's own figure
    works = table[table["paper"].isin(ATTACK_PAPERS.values())]
    assert len(works) and works["claim"].str.endswith("clones the undefended victim").all()


def test_readme_summary_quotes_the_tables_verbatim(finished_run: Path) -> None:
    from msdefense.reporting.summary import quoted_tables, results_section

    tables = finished_run / "tables"
    quoted = quoted_tables(tables)
    assert {q.source for q in quoted} >= {"claims.csv", "knockoff.csv", "datafree.csv", "misleader.csv"}
    for q in quoted:  # every quoted row is a row of its table, cell for cell
        source = read_table(tables / q.source)[list(q.frame.columns)]
        merged = q.frame.merge(source.drop_duplicates(), how="left", indicator=True)
        assert len(merged) == len(q.frame) and (merged["_merge"] == "both").all(), q.source
    text = results_section(tables)
    claims = read_table(tables / "claims.csv")
    for row in claims.itertuples():  # every claim, with its setting and verdict
        assert f"| {row.claim} | {row.setting} |" in text and row.verdict in text


def test_figure_and_provenance(finished_run: Path) -> None:
    for name in ("knockoff_tradeoff.png", "knockoff_tradeoff.pdf"):
        assert (finished_run / "figures" / name).stat().st_size > 1000
    for seed in SEEDS:
        assert (finished_run / f"seed{seed}" / "victims" / "digits_tiny" / "history.csv").exists()
        assert (finished_run / "logs" / "train_victim" / f"seed{seed}" / "digits_tiny.log").exists()
        assert (finished_run / "benchmarks" / "train_victim" / f"seed{seed}" / "digits_tiny.tsv").exists()
        record = load_json(finished_run / f"seed{seed}" / "victims" / "digits_tiny" / "metrics.json")
        assert record["seed"] == seed


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    proc = snakemake(finished_run.parent.parent, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _planned_rules(source: Path, workdir: Path) -> set[str]:
    """The rules a dry run of the workflow in ``source`` (its package first on the path) plans."""
    cmd = [SNAKEMAKE, "--snakefile", str(source / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "tiny.yaml"), "--cores", "2", "--dry-run", "--quiet", "rules"]
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit(900), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return set()
    rows = re.findall(r"^([a-z_]+)\s+\d+\s*$", text, flags=re.MULTILINE)
    return {r for r in rows if r != "total"}


def test_a_code_edit_plans_the_jobs_that_run_it_again(finished_run: Path, tmp_path: Path) -> None:
    """Editing a function of the package reruns exactly the rules whose code imports it."""
    source = tmp_path / "repo"
    source.mkdir()
    shutil.copy(ROOT / "Snakefile", source)
    for name in ("rules", "workflow", "config", "envs", "profiles", "src"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    workdir = finished_run.parent.parent
    assert _planned_rules(source, workdir) == set()  # same code elsewhere: nothing to do
    claims = source / "src" / "msdefense" / "reporting" / "claims.py"
    claims.write_text(claims.read_text() + "\n\ndef _edited() -> int:\n    return 1\n")
    tables = _planned_rules(source, workdir)
    assert "claims" in tables and tables <= TABLE_RULES | {"all"}, tables
    dcp = source / "src" / "msdefense" / "defenses" / "dcp.py"
    dcp.write_text(dcp.read_text() + "\n\ndef _edited() -> int:\n    return 1\n")
    planned = _planned_rules(source, workdir)
    assert {"answer_queries", "train_knockoff"} <= planned
    assert "run_datafree" not in planned  # the tiny config attacks no DCP-defended victim data-free


def test_resources_table_has_every_job_and_the_declared_memory_covers_its_peak(finished_run: Path) -> None:
    from msdefense.reporting.resources import RESOURCE_COLUMNS

    table = pd.read_csv(finished_run / "tables" / "resources.csv")
    assert list(table.columns) == RESOURCE_COLUMNS
    benchmarks = sorted((finished_run / "benchmarks").rglob("*.tsv"))
    assert len(table) == len(benchmarks) and table["seconds"].gt(0).all()
    assert {"train_victim", "train_knockoff", "run_datafree", "answer_queries"} <= set(table["rule"])
    assert (table["declared_mem_mb"] >= table["peak_host_mib"]).all(), table.sort_values(
        "peak_host_mib"
    ).tail()
    from msdefense.resources import gpu_rules

    computed = table[table["rule"].isin(gpu_rules())]
    assert (computed["peak_gpu_mib"] == 0).all()  # recorded by every compute job; the tiny run is on the CPU
    assert table[["rule", "wildcards"]].equals(
        table[["rule", "wildcards"]].sort_values(["rule", "wildcards"])
    )
