"""The claims table: each verdict follows its stated rule, on synthetic per-seed records."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from msdefense.reporting import CLAIMS_COLUMNS, claims_table, interpolation_seeds, verdict


def test_verdict_rule() -> None:
    assert verdict(0.12, 0.30, 0.10, above=True) == "holds"
    assert verdict(0.01, 0.08, 0.10, above=True) == "fails"
    assert verdict(0.05, 0.20, 0.10, above=True) == "inconclusive"
    assert verdict(0.00, 0.005, 0.01, above=False) == "holds"
    assert verdict(0.02, 0.05, 0.01, above=False) == "fails"
    assert verdict(math.nan, math.nan, 0.10, above=True) == "inconclusive"  # one seed: no interval


def _knockoff(drops: dict[str, list[float]], transfer: str = "t") -> pd.DataFrame:
    """Per-seed KnockoffNets rows of victim v: undefended clone 0.9; each defense's strongest value
    lowers the clone accuracy by the seed's entry of ``drops``."""
    rows = []
    for seed in range(len(next(iter(drops.values())))):
        rows.append(("undefended", "None", "0.0", seed, 0.95, 0.90, 0.0))
        for name, per_seed in drops.items():
            rows.append((name, name, "0.5", seed, 0.95, 0.90 - per_seed[seed] / 2, 0.1))
            rows.append((name, name, "1.5", seed, 0.95, 0.90 - per_seed[seed], 0.3))
    return pd.DataFrame(
        [
            {"victim": "v", "transfer": transfer, "labels": "soft", "defense": d, "param": p, "seed": s,
             "defender_acc": a, "clone_acc": c, "fidelity": c, "l1_distance": l1, "queries": 10, "method": m}
            for d, m, p, s, a, c, l1 in rows
        ]
    )  # fmt: skip


def _claims(knockoff: pd.DataFrame) -> pd.DataFrame:
    return claims_table(knockoff=knockoff, interpolation=interpolation_seeds(knockoff))


def _row(table: pd.DataFrame, claim: str) -> pd.Series:
    return table[table["claim"] == claim].iloc[0]


@pytest.mark.parametrize(
    ("dcp_drops", "expected"),
    [([0.50, 0.52, 0.48], "holds"), ([0.02, 0.03, 0.01], "fails"), ([0.00, 0.30, 0.05], "inconclusive")],
)
def test_dcp_stops_knockoff_by_its_rule(dcp_drops, expected) -> None:
    table = _claims(_knockoff({"DCP": dcp_drops, "MAD": [0.1, 0.1, 0.1]}))
    assert list(table.columns) == CLAIMS_COLUMNS
    row = _row(table, "DCP stops KnockoffNets (soft labels)")
    assert row["verdict"] == expected and row["n_seeds"] == 3
    assert row["measured"] == pytest.approx(sum(dcp_drops) / 3)
    assert "holds if the 95% t-interval over seeds is > 0.1" in row["rule"]


def test_unrun_claims_are_inconclusive_and_say_so() -> None:
    table = _claims(_knockoff({"DCP": [0.5, 0.5, 0.5]}))
    dfme = _row(table, "DCP stops DFME")
    assert dfme["verdict"] == "inconclusive" and "not run" in dfme["setting"]
    assert set(table["verdict"]) <= {"holds", "fails", "inconclusive"}
    assert len(table) >= 8


def test_dcp_against_the_best_baseline_at_equal_cost() -> None:
    # the defender accuracy never moves, so every defense's point is its strongest setting
    better = _row(
        _claims(_knockoff({"DCP": [0.5, 0.6, 0.55], "MAD": [0.1, 0.2, 0.1]})),
        "DCP outperforms the baselines at equal accuracy cost",
    )
    assert better["verdict"] == "holds" and better["measured"] == pytest.approx(0.4166667)
    worse = _row(
        _claims(_knockoff({"DCP": [0.1, 0.1, 0.12], "MAD": [0.5, 0.6, 0.55]})),
        "DCP outperforms the baselines at equal accuracy cost",
    )
    assert worse["verdict"] == "fails"


def test_misleader_claims_use_both_views() -> None:
    rows = []
    for seed in range(3):
        for attack, ens_clone in (("dfme", 0.85 + 0.01 * seed), ("dfme_as_logits", 0.2 + 0.01 * seed)):
            for row, clone, acc in (
                ("undefended", 0.9, 0.99),
                ("R", 0.7, 0.98),
                ("MISLEADER", ens_clone, 0.985),
            ):
                rows.append({"dataset": "digits", "row": row, "victim": "ens" if row == "MISLEADER" else "v",
                             "defense": "x", "attack": attack, "seed": seed, "param": 0.0, "defender_acc": acc,
                             "defender_acc_gap": 0.0, "clone_acc": clone, "fidelity": clone, "match": "-"})  # fmt: skip
    misleader = pd.DataFrame(rows)
    datafree = pd.DataFrame(
        [
            {"attack": a, "oracle_view": view, "preset": "dfme_cifar10", "victim": "ens", "defense": "undefended",
             "method": "None", "param": 0.0, "seed": seed, "clone_acc": 0.5}
            for a, view in (("dfme", "probabilities"), ("dfme_as_logits", "probabilities_as_logits"))
            for seed in range(3)
        ]
    )  # fmt: skip
    table = claims_table(
        knockoff=_knockoff({"DCP": [0.5] * 3}),
        interpolation=pd.DataFrame(
            columns=["victim", "transfer", "labels", "budget", "defense", "seed", "clone_err"]
        ),
        misleader=misleader,
        datafree=datafree,
    )
    lowers = table[table["claim"] == "MISLEADER lowers clone accuracy under DFME"].set_index("setting")
    assert lowers.loc["ens, dfme (probabilities view)", "verdict"] == "fails"
    assert lowers.loc["ens, dfme_as_logits (probabilities_as_logits view)", "verdict"] == "holds"
    assert _row(table, "MISLEADER keeps utility")["verdict"] == "holds"
    beats = table[table["claim"] == "MISLEADER beats the baselines at equal accuracy"].set_index("setting")
    assert (
        beats.loc["ens, dfme (probabilities view)", "verdict"] == "fails"
    )  # R's 0.7 beats the ensemble's 0.86


def test_rule_text_gives_back_its_threshold_and_side() -> None:
    from msdefense.reporting.claims import Claim, rule_threshold

    for above in (True, False):
        claim = Claim(paper="p", claim="c", threshold=0.02, above=above, quantity="a minus b")
        assert rule_threshold(claim.rule()) == (0.02, above)  # both sides appear in every rule text
