"""The worst case over KnockoffNets attackers (msdefense.reporting.worst_case; docs/statistics.md)."""

from __future__ import annotations

import pandas as pd

from msdefense.reporting.worst_case import WORST, attacker_name, deciding_note, with_worst_case


def runs() -> pd.DataFrame:
    rows = []
    for seed, (soft, argmax, restored) in enumerate(
        [(0.40, 0.80, 0.95), (0.90, 0.85, 0.70), (0.60, 0.60, 0.60)]
    ):
        for labels, acc in (("soft", soft), ("argmax", argmax), ("restored", restored)):
            rows.append(
                {
                    "victim": "v",
                    "transfer": "t",
                    "labels": labels,
                    "defense": "DCP",
                    "method": "DCP",
                    "param": "1.5",
                    "seed": seed,
                    "clone_acc": acc,
                }
            )
    rows.append(
        {
            "victim": "v",
            "transfer": "t",
            "labels": "soft",
            "defense": "MAD",
            "method": "MAD",
            "param": "0.5",
            "seed": 0,
            "clone_acc": 0.3,
        }
    )
    return pd.DataFrame(rows)


def test_the_worst_case_is_the_best_clone_of_each_seed_and_names_its_attacker() -> None:
    out = with_worst_case(runs())
    worst = out[out["labels"] == WORST].set_index(["defense", "seed"])
    assert worst.loc[("DCP", 0), "clone_acc"] == 0.95 and worst.loc[("DCP", 0), "decided_by"] == "restored"
    assert worst.loc[("DCP", 1), "clone_acc"] == 0.90 and worst.loc[("DCP", 1), "decided_by"] == "soft"
    assert worst.loc[("DCP", 2), "decided_by"] == "soft"  # a tie goes to the simpler attacker
    assert "MAD" not in worst.index.get_level_values("defense")  # it met the soft attacker only
    assert len(out) == len(runs()) + 3
    assert (out.loc[out["labels"] != WORST, "decided_by"] == out.loc[out["labels"] != WORST, "labels"]).all()
    note = deciding_note(out[out["labels"] == WORST], "DCP")
    assert note == "deciding attacker at DCP 1.5: soft on 2 of 3 seeds, restored on 1"


def test_one_kind_of_attacker_has_no_worst_case_rows() -> None:
    soft = runs()[lambda d: d["labels"] == "soft"]
    assert WORST not in set(with_worst_case(soft)["labels"])
    assert attacker_name("soft") == "KnockoffNets (soft labels)"
    assert attacker_name(WORST) == "KnockoffNets (worst case over attackers)"


def test_a_value_the_defense_aware_attacker_skipped_has_no_worst_case_row() -> None:
    """knockoff.strongest_only: [restored]: the restored clone exists at DCP 1.5 only, so DCP 0.8
    (soft and argmax alone) gets no worst-case row, while 1.5 keeps its own."""
    weaker = runs()[lambda d: d["labels"] != "restored"].assign(param="0.8", clone_acc=0.99)
    out = with_worst_case(pd.concat([runs(), weaker], ignore_index=True))
    worst = out[out["labels"] == WORST]
    assert set(worst["param"]) == {"1.5"} and len(worst) == 3
    assert worst["clone_acc"].max() == 0.95  # the 0.99 clones at 0.8 are no worst case of 1.5
