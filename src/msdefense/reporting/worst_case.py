"""The worst case over attackers: for every defense and operating point, the best clone any of the
experiment's KnockoffNets attackers trained (soft-label, label-only, defense-aware).

A defense is only as good as the strongest attacker it meets (Tang et al., "ModelGuard", USENIX
Security 2024, report the same maximum). Per seed and setting the worst case is the highest test
accuracy among the label kinds that ran there; ``decided_by`` names the kind that reached it. Being
a maximum over a few clones, it leans slightly upwards (docs/statistics.md, "The worst case").
"""

from __future__ import annotations

import pandas as pd

from .claim_inputs import strengths

#: the label kind of the worst-case rows
WORST = "worst"
#: label kinds whose undefended clones repeat another kind's: the defense-aware attacker inverts
#: the identity exactly (its clone is the soft one), the worst case takes one of them; their
#: claims about the undefended victim alone would enter the Holm family twice
REPEATS_UNDEFENDED = ("restored", WORST)
#: the order in which ties go (the simpler attacker first)
KIND_ORDER = ("soft", "argmax", "restored")


def with_worst_case(per_seed: pd.DataFrame) -> pd.DataFrame:
    """``per_seed`` (KnockoffNets rows with ``labels``) with a ``decided_by`` column (a row's own
    label kind) and one ``labels: worst`` row per victim × transfer set × defense × value × seed
    where that defense met every kind the victim and transfer set were attacked with, and there
    were several: the row of the highest ``clone_acc`` over them (ties: :data:`KIND_ORDER`), its
    ``decided_by`` the kind. A defense or value that some kind skipped (``knockoff.argmax_defenses``,
    ``restored_defenses``, ``strongest_only``) gets no worst-case row: a maximum over fewer
    attackers would not compare with the others'."""
    per_seed = per_seed.assign(decided_by=per_seed["labels"])
    if per_seed["labels"].nunique() < 2:
        return per_seed
    # only where every kind of the victim and transfer set ran against the defense at that value: a
    # maximum over fewer attackers would not compare with the others'
    group = ["victim", "transfer"]
    all_kinds = per_seed.groupby(group)["labels"].transform("nunique")
    ran = per_seed.groupby([*group, "defense", "param"])["labels"].transform("nunique")
    complete = per_seed[(ran == all_kinds) & (all_kinds > 1)]
    if complete.empty:
        return per_seed
    rank = complete["labels"].map({k: i for i, k in enumerate(KIND_ORDER)}).fillna(len(KIND_ORDER))
    ordered = complete.assign(_rank=rank).sort_values(
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
    s = strengths(mine)
    at = mine[s == s.max()]
    return f"deciding attacker at {method} {float(at['param'].iloc[0]):g}: {deciding_attackers(at)}"
