"""The validity gate of ``tables/claims`` (docs/statistics.md): does an attack work on the
undefended victim, and the claims of the attack papers that say so, row by row."""

from __future__ import annotations

import pandas as pd

from .claim_inputs import (
    ATTACK_PAPER_VALUES,
    ATTACK_PAPERS,
    VALID_FRACTION,
    ClaimInputs,
    attack_family,
    by_seed,
)
from .verdicts import Claim, join_notes
from .worst_case import REPEATS_UNDEFENDED, attacker_name


def validity(runs: pd.DataFrame, attack: str) -> str:
    """Why the attack in ``runs`` (one victim's runs of one attack) does not work undefended, or
    ``""``: its undefended clone must reach :data:`VALID_FRACTION` of the victim's accuracy on
    every seed (an attack run by no seed undefended cannot be checked, and is not testable)."""
    undefended = runs[runs["method"] == "None"]
    if undefended.empty:
        return f"{attack} was not run against the undefended victim: its strength is unknown"
    ratio = by_seed(undefended, "clone_acc") / by_seed(undefended, "defender_acc")
    bad = ratio[ratio < VALID_FRACTION]
    if bad.empty:
        return ""
    seeds = ", ".join(f"{r:.2f} on seed {s}" for s, r in bad.items())
    return (
        f"{attack} does not work undefended: its clone reaches {seeds} of the victim's accuracy "
        f"(< {VALID_FRACTION:g} on some seed)"
    )


def capped(runs: pd.DataFrame) -> str:
    """A note naming the KnockoffNets clones of ``runs`` that stopped on the epoch cap, or ``""``."""
    if "stop_reason" not in runs or runs.empty:
        return ""
    hit = runs[runs["stop_reason"] == "cap"]
    if hit.empty:
        return ""
    cap = int(hit["epochs_run"].max()) if "epochs_run" in hit else "the cap"
    return f"{len(hit)} of {len(runs)} clones stopped on the cap of {cap} epochs, not on a plateau"


def attack_rows(t: ClaimInputs) -> list[dict[str, object]]:
    """Does each attack work undefended? One row per attack, victim (and transfer set, labels)."""
    knockoff, datafree, n_test = t.knockoff, t.datafree, t.n_test
    rows = []

    def works(family: str, name: str) -> Claim:
        return Claim(
            ATTACK_PAPERS[family],
            f"{name} clones the undefended victim",
            VALID_FRACTION,
            True,
            "undefended clone's test accuracy over the victim's, per seed (the validity gate: every "
            f"seed must reach {VALID_FRACTION:g} for the rows that rest on this attack)",
            spread="fraction",
            paper_value=ATTACK_PAPER_VALUES[family],
        )

    def ratio(runs: pd.DataFrame) -> pd.Series | None:
        und = runs[runs["method"] == "None"]
        return None if und.empty else (by_seed(und, "clone_acc") / by_seed(und, "defender_acc"))

    for (victim, transfer, labels), runs in knockoff.groupby(["victim", "transfer", "labels"], sort=False):
        if labels in REPEATS_UNDEFENDED:
            continue  # its undefended clones are the soft or label-only ones: the same row again
        claim = works("KnockoffNets", attacker_name(labels))
        reason = validity(runs, "KnockoffNets")
        rows.append(
            claim.row(
                f"{victim}, KnockoffNets on {transfer}",
                ratio(runs),
                test_images=n_test,
                note=join_notes(reason, capped(runs[runs["method"] == "None"])),
            )
        )
    if datafree is not None and not datafree.empty:
        for (attack, view, victim), runs in datafree.groupby(["attack", "oracle_view", "victim"], sort=False):
            family = attack_family(str(runs["preset"].iloc[0]))
            claim = works(family, f"{family} ({view} view)")
            rows.append(
                claim.row(f"{victim}, {attack}", ratio(runs), test_images=n_test, note=validity(runs, attack))
            )
    return rows
