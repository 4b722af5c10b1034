"""The results bundle and the leaderboard (msdefense.reporting.leaderboard) on constructed
per-seed tables: what goes in, how it is ranked, what the latency ratio is measured against."""

from __future__ import annotations

import pandas as pd
import pytest

from msdefense.reporting import leaderboard as board
from msdefense.reporting.worst_case import WORST


def _knockoff() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for labels in ("soft", WORST):
            for defense, method, param, clone in (
                ("undefended", "None", 0.0, 0.95),
                ("DCP", "DCP", 1.5, 0.30 if labels == "soft" else 0.90),
                ("Random", "Random", 1.0, 0.60),
            ):
                rows.append(
                    {"victim": "v", "transfer": "t", "labels": labels, "defense": defense, "method": method,
                     "param": param, "seed": seed, "defender_acc": 0.97, "clone_acc": clone + 0.01 * seed,
                     "fidelity": clone, "l1_distance": 0.0 if method == "None" else 0.5, "queries": 100,
                     "test_images": 300}
                )  # fmt: skip
    return pd.DataFrame(rows)


def _interpolation() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for labels in ("soft", WORST):
            for defense, clone in (("DCP", 0.30 if labels == "soft" else 0.90), ("Random", 0.60)):
                rows.append(
                    {"victim": "v", "transfer": "t", "labels": labels, "defense": defense,
                     "budget": board.UTILITY_BUDGET, "seed": seed, "clone_err": 1 - clone - 0.01 * seed,
                     "param": 1.0, "defender_err": 0.035, "l1_distance": 0.5, "match": "within",
                     "test_images": 300}
                )  # fmt: skip
                rows.append({**rows[-1], "budget": "defender_err_+5pt", "clone_err": 0.99})  # not ranked
    return pd.DataFrame(rows)


def _latency() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"victim": "v", "defense": d, "method": m, "batch_size": b, "ms_per_query": ms}
            for d, m, ms in (("undefended", "None", 0.5), ("DCP", "DCP", 0.6), ("Random", "Random", 1.0))
            for b in (1, 64)
        ]
    )


def test_the_leaderboard_ranks_the_worst_case_within_the_utility_margin() -> None:
    table = board.leaderboard(_interpolation(), _knockoff(), _latency())
    assert list(table["defense"]) == ["Random", "DCP", "undefended"]  # DCP's soft 0.30 is no worst case
    assert list(table["rank"]) == [1, 2, 3] and set(table["view"]) == {WORST}
    dcp = table.set_index("defense").loc["DCP"]
    assert dcp["clone_acc"] == pytest.approx(0.91) and dcp["n_seeds"] == 3
    assert 0 <= dcp["clone_acc_ci_low"] <= dcp["clone_acc"] <= dcp["clone_acc_ci_high"] <= 1
    ratio = table.set_index("defense")["latency_ratio"]
    assert ratio["undefended"] == 1.0 and ratio["DCP"] == pytest.approx(1.2) and ratio["Random"] == 2.0
    assert (table["latency_floor"] == 1.0).all()


def test_without_a_worst_case_the_one_attacker_is_ranked_and_named() -> None:
    soft = board.leaderboard(
        _interpolation().query("labels == 'soft'"), _knockoff().query("labels == 'soft'"), None
    )
    assert list(soft["defense"]) == ["DCP", "Random", "undefended"] and set(soft["view"]) == {"soft"}
    assert soft["latency_ratio"].isna().all()


def test_the_bundle_holds_every_outcome_once_in_its_schema() -> None:
    knockoff = _knockoff()
    datafree = pd.DataFrame(
        [{"attack": "maze", "oracle_view": "probabilities", "victim": "v", "defense": "DCP", "method": "DCP",
          "param": 1.5, "seed": s, "defender_acc": 0.97, "clone_acc": 0.4, "fidelity": 0.4, "queries": 600,
          "test_images": 300} for s in range(3)]
    )  # fmt: skip
    budgets = pd.DataFrame(
        [{"attack": a, "victim": "v", "transfer": t, "defense": "DCP", "param": 1.5, "queries": q, "seed": s,
          "method": "DCP", "clone_acc": 0.3, "test_images": 300}
         for a, t, qs in (("knockoff", "t", (30, 100)), ("maze", "-", (200, 400, 600)))
         for q in qs for s in range(3)]
    )  # fmt: skip
    bundle = board.results_bundle(
        experiment="e", datasets={"v": "digits"}, knockoff=knockoff, datafree=datafree, budgets=budgets,
        latency=_latency(),
    )  # fmt: skip
    assert list(bundle.columns) == board.BUNDLE_COLUMNS
    finals = bundle[bundle["point"] == board.FINAL]
    assert len(finals) == len(knockoff) + len(datafree)
    curve = bundle[bundle["point"] == board.CURVE]  # every budget point but each curve's last
    assert sorted(set(curve["queries"])) == [30, 200, 400] and len(curve) == 3 * 3
    assert set(curve.loc[curve["attack"] == "maze", "view"]) == {"probabilities"}
    assert set(bundle["dataset"]) == {"digits"} and set(bundle["experiment"]) == {"e"}
    assert not bundle.duplicated(["attack", "view", "defense", "param", "transfer", "queries", "seed"]).any()
    with pytest.raises(ValueError, match="no dataset for victim"):
        board.results_bundle(experiment="e", datasets={}, knockoff=knockoff)
