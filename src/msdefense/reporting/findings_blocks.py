"""The generated blocks of docs/findings.md, each written from a results snapshot's tables
(``python -m msdefense.reporting.readme`` splices them in; tests/test_readme.py checks them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .claims import ATTACK_PAPERS
from .summary import CLONE_COLUMNS, Quoted, _render, _strongest_rows, with_interval
from .tables import read_table
from .worst_case import WORST


def views_section(tables: Path) -> str:
    """The oracle-view control for docs/findings.md: every data-free run of an undefended victim
    (the MISLEADER ensemble and its teacher) in both views, from ``datafree.csv``."""
    d = read_table(tables / "datafree.csv")
    d = d[d["method"] == "None"]
    cols = ["attack", "oracle_view", "victim", *CLONE_COLUMNS]
    q = Quoted(
        "Undefended victims under both oracle views",
        "datafree.csv",
        d[cols].sort_values(["attack", "victim"], kind="stable"),
    )
    link = tables.as_posix().removeprefix("docs/")  # the block lives in docs/findings.md
    return f"**{q.title}** ([datafree]({link}/datafree.md)):\n\n{_render(q)}"


#: Where the snapshot keeps a replication of the default run (another machine), if any.
REPLICATION = "replication"


def stability_section(tables: Path) -> str:
    """For docs/findings.md: the claims whose verdict differs between the snapshot's run and the
    replication kept in ``<tables>/replication/claims.csv`` (the same config on another machine)."""
    ours = read_table(tables / "claims.csv")
    other_path = tables / REPLICATION / "claims.csv"
    if not other_path.exists():
        return "No replication is kept beside the snapshot.\n"
    other = read_table(other_path)
    ours_seeds, other_seeds = (sorted(set(t["n_seeds"].dropna().astype(int))) for t in (ours, other))
    if max(ours_seeds) != max(other_seeds):
        return (
            f"The replication kept beside the snapshot ran another config ({max(other_seeds)} seeds, "
            f"against the snapshot's {max(ours_seeds)}, and the claims as they were then): its verdicts "
            "are not compared with the snapshot's.\n"
        )
    keys = ["paper", "claim", "setting"]
    both = ours.merge(other, on=keys, suffixes=("", "_replication"))
    changed = both[both["verdict"] != both["verdict_replication"]]
    opposite = changed[changed[["verdict", "verdict_replication"]].isin(["holds", "fails"]).all(axis=1)]
    cols = [*keys[1:], "verdict_replication", "measured_replication", "verdict", "measured"]
    q = Quoted("Claims whose verdict differs between the two runs", "claims.csv", changed[cols])
    head = (
        f"Of the {len(both)} claims both runs give a verdict for, {len(changed)} differ; "
        f"{len(opposite)} go from holds to fails or back (the others move to or from inconclusive)."
    )
    link = tables.as_posix().removeprefix("docs/")
    sources = f"[claims]({link}/claims.md), [replication]({link}/{REPLICATION}/README.md)"
    return f"{head}\n\n**{q.title}** ({sources}):\n\n{_render(q)}"


def validity_section(tables: Path) -> str:
    """For docs/findings.md: the claims table's attack-validity rows (does each attack work on the
    undefended victim, against the attack papers' own figures)."""
    claims = read_table(tables / "claims.csv")
    rows = claims[claims["paper"].isin(ATTACK_PAPERS.values())]
    cols = ["claim", "setting", "measured", "ci_low", "ci_high", "n_seeds", "verdict", "paper_value", "note"]
    q = Quoted(
        "The attacks on the undefended victims (clone accuracy over the victim's)", "claims.csv", rows[cols]
    )
    link = tables.as_posix().removeprefix("docs/")
    return f"**{q.title}** ([claims]({link}/claims.md)):\n\n{_render(q)}"


def convergence_section(tables: Path) -> str:
    """For docs/findings.md: how the KnockoffNets clones of the run stopped, per victim and label
    kind, over every defense, value and seed (``knockoff_seeds.csv``)."""
    k = read_table(tables / "knockoff_seeds.csv")
    k = k[k["labels"] != WORST]  # the worst-case rows repeat clones counted under their own kind
    frame = (
        k.groupby(["victim", "labels"], sort=True)
        .agg(
            clones=("stop_reason", "size"),
            on_plateau=("stop_reason", lambda s: int((s == "plateau").sum())),
            on_cap=("stop_reason", lambda s: int((s == "cap").sum())),
            epochs_min=("epochs_run", "min"),
            epochs_mean=("epochs_run", "mean"),
            epochs_max=("epochs_run", "max"),
        )
        .reset_index()
    )
    frame["epochs_mean"] = frame["epochs_mean"].astype(float)
    q = Quoted(
        "How the KnockoffNets clones stopped (every defense, value and seed)", "knockoff_seeds.csv", frame
    )
    return f"**{q.title}** ({q.source}):\n\n{_render(q)}"


def attackers_section(tables: Path) -> str:
    """For docs/findings.md: each defense at its strongest swept value against every KnockoffNets
    attacker the run trained (soft, label-only, defense-aware) and their worst case, from
    ``knockoff.csv`` (clone accuracy, mean [95% interval] over seeds)."""
    k = read_table(tables / "knockoff.csv")
    if not (k["labels"] == WORST).any():
        return "The snapshot has no worst case over attackers (one kind of attacker, or made before it existed).\n"
    top = _strongest_rows(k, ["victim", "transfer", "labels"])
    top = top.assign(
        cell=[
            with_interval(m, lo, hi)
            for m, lo, hi in zip(
                top["clone_acc"], top["clone_acc_ci_low"], top["clone_acc_ci_high"], strict=True
            )
        ]
    )
    keys = ["victim", "transfer", "defense", "param"]
    frame = top.pivot_table(index=keys, columns="labels", values="cell", aggfunc="first", sort=False)
    kinds = [c for c in ("soft", "argmax", "restored", WORST) if c in frame.columns]
    frame = frame[kinds].reset_index().fillna("–")
    worst = top[top["labels"] == WORST].set_index(keys)["decided_by"]
    frame["decided_by"] = [worst.get(tuple(r), "") for r in frame[keys].itertuples(index=False)]
    frame["defender_acc"] = [
        top[(top[keys] == list(r)).all(axis=1)]["defender_acc"].iloc[0]
        for r in frame[keys].itertuples(index=False)
    ]
    frame = frame[[*keys, "defender_acc", *kinds, "decided_by"]]
    q = Quoted(
        "Clone accuracy per attacker, each defense at its strongest swept value", "knockoff.csv", frame
    )
    link = tables.as_posix().removeprefix("docs/")
    return f"**{q.title}** ([knockoff]({link}/knockoff.md)):\n\n{_render(q)}"


def budgets_section(tables: Path) -> str:
    """For docs/findings.md: per budget curve group (attack, victim, transfer set), the undefended
    curve's area and reach, and the defenses (at their strongest swept value) whose area interval
    lies wholly below the undefended one's, from ``budget.csv``."""
    if not (tables / "budget.csv").exists():
        return "The snapshot has no budget curves (made before they existed).\n"
    b = _strongest_rows(read_table(tables / "budget.csv"), ["attack", "victim", "transfer"])
    reach = next(c for c in b.columns if c.startswith("queries_to_"))
    lines = []
    for (attack, victim, transfer), part in b.groupby(["attack", "victim", "transfer"], sort=False):
        und, rest = part[part["method"] == "None"], part[part["method"] != "None"]
        if und.empty:
            continue
        u = und.iloc[0]
        where = attack if transfer == "-" else f"{attack} on {transfer}"
        fraction = reach.removeprefix("queries_to_")
        got = (
            f"does not reach {fraction} of the victim within the budget"
            if pd.isna(u[reach])
            else f"reaches {fraction} of the victim at {u[reach]:,.0f} queries"
        )
        below = [f"{r.defense} ({r.auc:.3f})" for r in rest.itertuples() if r.auc_ci_high < u["auc_ci_low"]]
        others = (
            "no defense on this curve"
            if rest.empty
            else (
                f"area wholly below it behind {', '.join(below) if below else 'none'} of {len(rest)} defenses"
            )
        )
        lines.append(
            f"- **{victim}, {where}** (up to {u['queries']:,.0f} queries): undefended area "
            f"{with_interval(u['auc'], u['auc_ci_low'], u['auc_ci_high'])}; the undefended clone {got}; {others}."
        )
    return "\n".join(lines) + "\n"


#: The generated blocks of docs/findings.md (marker -> what writes it from the snapshot).
FINDINGS_BLOCKS = {
    "oracle-views": views_section,
    "verdict-stability": stability_section,
    "attack-validity": validity_section,
    "clone-convergence": convergence_section,
    "attacker-axis": attackers_section,
    "budget-curves": budgets_section,
}
#: The blocks of docs/findings.md written from the real-scale snapshot (:data:`FASHION_SNAPSHOT`).
FASHION_FINDINGS_BLOCKS = {
    "fashion-attack-validity": validity_section,
    "fashion-clone-convergence": convergence_section,
}
