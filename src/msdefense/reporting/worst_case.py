"""The worst case over attackers: for every defense and operating point, the best clone any of the
experiment's KnockoffNets attackers trained (soft-label, label-only, defense-aware).

A defense is only as good as the strongest attacker it meets (Tang et al., "ModelGuard", USENIX
Security 2024, report the same maximum). Per seed and setting the worst case is the highest test
accuracy among the label kinds that ran there; ``decided_by`` names the kind that reached it. Being
a maximum over a few clones, it leans slightly upwards (docs/statistics.md, "The worst case").
"""

from __future__ import annotations

import pandas as pd

#: the label kind of the worst-case rows
WORST = "worst"
#: the order in which ties go (the simpler attacker first)
KIND_ORDER = ("soft", "argmax", "restored")


def with_worst_case(per_seed: pd.DataFrame) -> pd.DataFrame:
    """``per_seed`` (KnockoffNets rows with ``labels``) with a ``decided_by`` column (a row's own
    label kind) and, where the experiment ran more than one label kind, one ``labels: worst`` row
    per victim × transfer set × defense × value × seed: the row of the highest ``clone_acc`` over
    the kinds that ran there (ties: :data:`KIND_ORDER`), its ``decided_by`` the kind."""
    per_seed = per_seed.assign(decided_by=per_seed["labels"])
    if per_seed["labels"].nunique() < 2:
        return per_seed
    rank = per_seed["labels"].map({k: i for i, k in enumerate(KIND_ORDER)}).fillna(len(KIND_ORDER))
    ordered = per_seed.assign(_rank=rank).sort_values(
        ["clone_acc", "_rank"], ascending=[False, True], kind="stable"
    )
    keys = [c for c in ("victim", "transfer", "defense", "param", "seed") if c in per_seed]
    worst = ordered.drop_duplicates(keys).drop(columns="_rank").assign(labels=WORST)
    return pd.concat([per_seed, worst], ignore_index=True)


def deciding_attackers(runs: pd.DataFrame) -> str:
    """``restored on 4 of 5 seeds, soft on 1``: who decided the worst-case rows ``runs``."""
    counts = runs["decided_by"].value_counts()
    parts = [
        f"{kind} on {n} of {len(runs)} seeds" if i == 0 else f"{kind} on {n}"
        for i, (kind, n) in enumerate(counts.items())
    ]
    return ", ".join(parts)


def attacker_name(labels: str) -> str:
    """How tables and claims name a KnockoffNets attacker: ``KnockoffNets (soft labels)``, …,
    ``KnockoffNets (worst case over attackers)``."""
    return (
        "KnockoffNets (worst case over attackers)" if labels == WORST else f"KnockoffNets ({labels} labels)"
    )


def deciding_note(runs: pd.DataFrame, method: str) -> str:
    """For a worst-case group: who decided ``method``'s strongest swept value (empty otherwise)."""
    mine = (
        runs[runs["method"] == method]
        if "labels" in runs and (runs["labels"] == WORST).all()
        else runs.iloc[:0]
    )
    if mine.empty:
        return ""
    top = mine["param"].astype(float).max()
    at = mine[mine["param"].astype(float) == top]
    return f"deciding attacker at {method} {top:g}: {deciding_attackers(at)}"
