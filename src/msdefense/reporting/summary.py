"""The README's generated parts: the experiment in numbers (from the config) and its results (from
the tables), so that the README quotes the config and the tables instead of copying them.

``README.md`` holds two blocks between markers, ``<!-- config:begin -->`` … ``<!-- config:end -->``
and ``<!-- results:begin -->`` … ``<!-- results:end -->``. ``make readme``
(``python -m msdefense.reporting.readme``) copies a finished default run's tables into
``docs/results/`` (the snapshot the README quotes, kept in the repository) and writes both blocks;
``tests/test_readme.py`` fails when a block is not what the config and the snapshot give, or when
the snapshot was made with another config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .claim_inputs import strengths
from .claims import CLAIMS_COLUMNS
from .tables import read_table, to_markdown
from .worst_case import WORST

SNAPSHOT = "docs/results"  # the default run's tables the README quotes
FASHION_SNAPSHOT = "docs/results/fashion"  # the real-scale experiment's (config/fashion.yaml)
#: the attacker axis on Fashion-MNIST (config/fashion_attackers.yaml)
FASHION_ATTACKERS_SNAPSHOT = "docs/results/fashion_attackers"


def _num(v: float, digits: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def with_interval(mean: float, low: float, high: float, digits: int = 3) -> str:
    """``0.912 [0.884, 0.940]`` (the mean alone where there is no interval)."""
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    if isinstance(low, float) and math.isnan(low):
        return _num(mean, digits)
    return f"{_num(mean, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _params(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def config_facts(config: Mapping[str, Any]) -> str:
    """The default experiment in numbers, from its (schema-validated) config."""
    from ..attacks.knockoff import label_kinds, labelled_for
    from ..config import datafree_runs, knockoff_runs, victim_kind

    data = config["data"]
    lines = [
        f"- **Seeds:** {len(config['seeds'])} replicates ({_params(config['seeds'])}); the data split "
        f"(seed {data['split_seed']}) is shared: {data['validation_fraction']:g} of the training split for "
        f"validation, {data['attacker_holdout']:g} of it held out for the attacker.",
    ]
    for name, v in config["victims"].items():
        kind = victim_kind(v)
        if kind == "train":
            what = f"{v['arch']} trained for {v['train']['epochs']} epochs"
        elif kind == "misleader":
            members = ", ".join(m["arch"] for m in v["misleader"]["members"])
            what = f"MISLEADER ensemble of {members}, distilled from {v['misleader']['teacher']}"
        else:
            q = v["quantize"]
            what = f"int8 {q['mode'].upper()} ({q['backend']}) of {q['source']}"
        lines.append(f"- **Victim `{name}`** ({v['dataset']}): {what}.")
    for name, t in config["transfer_sets"].items():
        if t["source"] == "photo_crops":
            what = f"{t['size']:,} random crops ({t['crop_min']}–{t['crop_max']} px) of scikit-learn's photographs"
        elif t["source"] == "heldout":
            what = "the held-out part of the victim's training split"
        else:
            what = f"the {t['dataset']} dataset"
        used = any(name in v.get("transfer_sets", []) for v in config["victims"].values())
        lines.append(
            f"- **Transfer set `{name}`:** {what}{'' if used else ' (defined; no victim is attacked with it)'}."
        )
    sweeps = "; ".join(
        f"{n}{'' if n == d['method'] else ' (' + d['method'] + ')'} {_params(d['params'])}"
        for n, d in config["defenses"].items()
    )
    lines.append(f"- **Defense sweeps:** {sweeps}.")
    k = config["knockoff"]
    labels = list(label_kinds(k))
    ts, vs = config["transfer_sets"], config["victims"]
    n_clones = sum(
        len(label_kinds(k, d, labelled_for(ts[t], vs[v]["dataset"]))) for v, t, d, _ in knockoff_runs(config)
    )
    schedule = (
        f"{k['epochs']} epochs"
        if k.get("patience") is None
        else f"trained until the validation accuracy plateaus (patience {k['patience']} epochs, "
        f"lr {k['lr']:g}, cap {k['epochs']} epochs)"
    )
    budgets = sorted(k.get("budgets", []))
    at_budgets = (
        f"; and soft-label clones at {', '.join(f'{f:.0%}' for f in budgets)} of the queries (the budget "
        f"curves): {len(budgets) * sum(1 for _ in knockoff_runs(config))} more"
        if budgets
        else ""
    )
    lines.append(
        f"- **KnockoffNets:** {k['arch']} clones, {schedule}, {' and '.join(labels)} labels: "
        f"{n_clones} clones per seed{at_budgets}."
    )
    df = config.get("datafree")
    if df:
        for name, a in df["attacks"].items():
            runs = [r for r in datafree_runs(config) if r[0] == name]
            view = a.get("oracle_view", "probabilities")
            lines.append(
                f"- **Data-free `{name}`:** preset {a['preset']}, {a['query_budget']:,} queries, "
                f"{view} view, {len(runs)} runs per seed."
            )
    lat = config["latency"]
    lines.append(f"- **Latency:** batch sizes {_params(lat['batch_sizes'])}, {lat['threads']} threads.")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Quoted:
    """A table of the summary: its title, the CSV it quotes and the rows/columns it shows."""

    title: str
    source: str
    frame: pd.DataFrame


def _strongest_rows(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The undefended row and each defense's row at its strongest swept value, per ``keys``."""
    t = table.assign(_p=strengths(table))
    top = t.groupby([*keys, "defense"], sort=False)["_p"].transform("max")
    return t[t["_p"] == top].drop(columns="_p")


#: Columns of the claims table the README leaves to the table itself (the p-value behind the Holm
#: verdict; the rule, written out in tables/claims.md).
QUOTED_CLAIMS_LEAVE_OUT = ("p_value", "rule")
#: The columns every quoted results table ends with.
CLONE_COLUMNS = ["n_seeds", "defender_acc", "clone_acc", "clone_acc_ci_low", "clone_acc_ci_high"]


def quoted_tables(tables: Path) -> list[Quoted]:
    """The summary's tables, each a subset of a generated table's rows and columns, cells verbatim."""
    out = []

    def have(name: str) -> bool:
        return (tables / f"{name}.csv").exists()

    claims = read_table(tables / "claims.csv")
    out.append(
        Quoted(
            "Claims",
            "claims.csv",
            claims[[c for c in CLAIMS_COLUMNS if c not in QUOTED_CLAIMS_LEAVE_OUT]],
        )
    )
    knock = read_table(tables / "knockoff.csv")
    cols = ["victim", "transfer", "labels", "defense", "param", *CLONE_COLUMNS, "epochs_run", "stop_reason"]
    out.append(
        Quoted(
            "KnockoffNets (each defense at its strongest swept value; epochs trained, mean over seeds, "
            "and why the clones stopped)",
            "knockoff.csv",
            _strongest_rows(knock, ["victim", "transfer", "labels"])[cols],
        )
    )
    if (knock["labels"] == WORST).any():
        cols = ["victim", "transfer", "defense", "param", *CLONE_COLUMNS, "decided_by"]
        worst = _strongest_rows(knock[knock["labels"] == WORST], ["victim", "transfer"])
        out.append(
            Quoted(
                "KnockoffNets, worst case over attackers (each defense at its strongest swept value; "
                "decided_by: the attacker of the best clone, per seed)",
                "knockoff.csv",
                worst[cols],
            )
        )
    if have("leaderboard"):
        lb = read_table(tables / "leaderboard.csv")
        cols = ["rank", "victim", "transfer", "view", "defense", "param", "n_seeds", "clone_acc"]
        out.append(
            Quoted(
                "Leaderboard (defenses ranked by worst-case clone accuracy at the strongest setting "
                "within the utility margin of accuracy cost; latency_ratio: ms per query over the "
                "undefended pass, one query at a time; its floor is 1.0)",
                "leaderboard.csv",
                lb[[*cols, "clone_acc_ci_low", "clone_acc_ci_high", "defender_acc", "latency_ratio"]],
            )
        )
    if have("datafree"):
        d = read_table(tables / "datafree.csv")
        cols = ["attack", "oracle_view", "victim", "defense", "param", *CLONE_COLUMNS]
        out.append(Quoted("Data-free attacks", "datafree.csv", d[cols]))
    if have("budget"):
        b = read_table(tables / "budget.csv")
        reach = [c for c in b.columns if c.startswith("queries_to_")]
        cols = ["attack", "victim", "transfer", "defense", "param", "n_seeds", "queries", "clone_acc"]
        out.append(
            Quoted(
                "Budget curves (each defense at its strongest swept value; auc: mean clone accuracy over "
                "log-spaced budgets up to `queries`; queries_to_*: the fewest queries at which the mean "
                "clone reaches that fraction of the victim, blank: not within the budget)",
                "budget.csv",
                _strongest_rows(b, ["attack", "victim", "transfer"])[
                    [*cols, "auc", "auc_ci_low", "auc_ci_high", *reach]
                ],
            )
        )
    if have("misleader"):
        m = read_table(tables / "misleader.csv")
        cols = ["row", "attack", "param", "match", *CLONE_COLUMNS]
        out.append(
            Quoted(
                "MISLEADER, Table B (baselines matched at MISLEADER's defended accuracy)",
                "misleader.csv",
                m[cols],
            )
        )
    if have("quantization"):
        q = read_table(tables / "quantization.csv")
        cols = [
            "victim",
            "precision",
            "backend",
            "n_seeds",
            "accuracy",
            "accuracy_ci_low",
            "accuracy_ci_high",
            "size_mb",
        ]
        out.append(Quoted("Victims: fp32 and int8", "quantization.csv", q[cols]))
    lat = read_table(tables / "latency.csv")
    big = lat[lat["batch_size"] == lat["batch_size"].max()]
    cols = [
        "victim",
        "defense",
        "batch_size",
        "overhead_vs_none",
        "overhead_ci_low",
        "overhead_ci_high",
        "reliable",
    ]
    out.append(Quoted("Latency over the undefended pass (largest batch)", "latency.csv", big[cols]))
    return out


def _interval_columns(columns: list[str]) -> list[tuple[str, str, str, int]]:
    """(value, low, high, digits) of every interval a quoted table carries: ``<m>_ci_low`` /
    ``<m>_ci_high`` of the summaries, ``ci_low`` / ``ci_high`` of the claims, ``overhead_ci_*``
    of the latency table."""
    named = {
        "measured": ("ci_low", "ci_high", 3),
        "overhead_vs_none": ("overhead_ci_low", "overhead_ci_high", 2),
    }
    out = []
    for c in columns:
        low, high, digits = named.get(c, (f"{c}_ci_low", f"{c}_ci_high", 3))
        if low in columns and high in columns:
            out.append((c, low, high, digits))
    return out


def _render(q: Quoted) -> str:
    """A quoted table as Markdown: intervals folded into ``mean [low, high]`` cells."""
    df = q.frame.copy()
    for col, low, high, digits in _interval_columns(list(df.columns)):
        df[col] = [
            with_interval(m, lo, hi, digits) for m, lo, hi in zip(df[col], df[low], df[high], strict=True)
        ]
        df = df.drop(columns=[low, high])
    return to_markdown(df.astype(object).map(lambda v: _num(v) if isinstance(v, float) else v), digits=3)


def results_section(tables: Path, *, experiment: str = "default", command: str = "make readme") -> str:
    """The README's results block from an experiment's ``tables/`` folder (a snapshot of
    ``results/<experiment>/tables/`` that ``command`` writes)."""
    parts = [
        "Means over seeds with 95% intervals over seeds and test images in brackets (docs/statistics.md); "
        "every number below is "
        f"quoted from `{tables.as_posix()}/` (a snapshot of `results/{experiment}/tables/`) by `{command}`.\n",
    ]
    for q in quoted_tables(tables):
        parts.append(
            f"**{q.title}** ([{q.source[:-4]}]({tables.as_posix()}/{q.source[:-4]}.md)):\n\n{_render(q)}"
        )
        if q.title.startswith("KnockoffNets, worst case"):
            knock = read_table(tables / "knockoff.csv")
            parts.append(
                survivors(_strongest_rows(knock[knock["labels"] == WORST], ["victim", "transfer"])) + "\n"
            )
    return "\n".join(parts)


def survivors(worst: pd.DataFrame) -> str:
    """Which defenses stop the worst case over attackers, per victim and transfer set: those whose
    worst-case clone interval at their strongest value lies wholly below the undefended one's."""
    lines = []
    for (victim, transfer), part in worst.groupby(["victim", "transfer"], sort=False):
        und = part[part["method"] == "None"]
        rest = part[part["method"] != "None"]
        if und.empty or rest.empty:
            continue
        floor = float(und["clone_acc_ci_low"].iloc[0])
        held = [
            f"{d} ({p})"
            for d, p, hi in zip(rest["defense"], rest["param"], rest["clone_acc_ci_high"], strict=True)
            if hi < floor
        ]
        others = [
            d for d, hi in zip(rest["defense"], rest["clone_acc_ci_high"], strict=True) if not hi < floor
        ]
        lines.append(
            f"- **{victim} on {transfer}:** "
            + (f"below it behind {', '.join(held)}" if held else "none of the defenses it met")
            + (f"; not behind {', '.join(others)}." if others and held else ".")
        )
    return (
        "The defenses whose worst-case clone (over the attackers; among the defenses that met every "
        "attacker) has an interval wholly below the undefended clone's; whether that drop is large "
        "enough to stop the attack is the claims' threshold (docs/statistics.md):\n\n" + "\n".join(lines)
    )


def fashion_section(tables: Path) -> str:
    """The README's block of the real-scale experiment (``config/fashion.yaml``)."""
    return results_section(tables, experiment="fashion", command="make readme-fashion")


def fashion_attackers_section(tables: Path) -> str:
    """The README's block of the attacker axis on Fashion-MNIST (``config/fashion_attackers.yaml``)."""
    return results_section(tables, experiment="fashion_attackers", command="make readme-fashion-attackers")


def splice(text: str, marker: str, content: str) -> str:
    """``text`` with the block between ``<!-- marker:begin -->`` and ``<!-- marker:end -->`` replaced."""
    pattern = re.compile(rf"(<!-- {marker}:begin -->\n).*?(<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {marker}:begin --> … <!-- {marker}:end --> block")
    return pattern.sub(lambda m: m[1] + content + m[2], text)


def block(text: str, marker: str) -> str:
    """The content of the block ``marker`` of ``text``."""
    match = re.search(rf"<!-- {marker}:begin -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    if not match:
        raise ValueError(f"no <!-- {marker}:begin --> … <!-- {marker}:end --> block")
    return match[1]


def load_config(path: Path, schema: Path) -> dict[str, Any]:
    """A config file validated (defaults filled in) the way the Snakefile does it."""
    from ..preflight import load_checked

    return load_checked(path, schema)
