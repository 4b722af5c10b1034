"""Budget curves: the nested budgets of KnockoffNets, the data-free checkpoints, the curves' areas
and reach (msdefense.attacks.knockoff, msdefense.reporting.budgets)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from msdefense.attacks.knockoff import budget_sizes, first_queries, query_order
from msdefense.io import save_json
from msdefense.reporting import budgets


def test_budget_sizes_are_nested_distinct_and_leave_the_full_set_to_the_sweep() -> None:
    assert budget_sizes([0.3, 0.1], 539) == [54, 162]
    assert budget_sizes([0.1, 0.1001], 100) == [10]  # the same count once
    assert budget_sizes([0.001], 100) == [1]  # at least one query
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="knockoff.budgets"):
            budget_sizes([bad], 100)


def test_first_queries_take_a_prefix_of_one_seeded_order() -> None:
    order = query_order(50, seed=7)
    assert sorted(order.tolist()) == list(range(50))
    assert np.array_equal(order, query_order(50, seed=7)) and not np.array_equal(
        order, query_order(50, seed=8)
    )
    images = torch.utils.data.TensorDataset(torch.arange(50.0), torch.zeros(50))
    answers = torch.arange(50.0)[:, None].repeat(1, 3)
    small, seen_small = first_queries(images, answers, order, 10)
    large, seen_large = first_queries(images, answers, order, 30)
    assert [float(small[i][0]) for i in range(10)] == order[:10].tolist()  # image i is query order[i]
    assert torch.equal(seen_small[:, 0], torch.from_numpy(order[:10]).float())  # with its own answer
    assert torch.equal(seen_large[:10], seen_small)  # nested: the larger budget starts with the smaller
    with pytest.raises(ValueError, match="budget of 51"):
        first_queries(images, answers, order, 51)
    # an epoch of the full set's length cycles through the budget's queries, answers alongside
    cycled, seen_cycled = first_queries(images, answers, order, 10, epoch=50)
    assert len(cycled) == 50 and [float(cycled[i][0]) for i in range(50)] == order[:10].tolist() * 5
    assert torch.equal(seen_cycled[:, 0], torch.from_numpy(np.resize(order[:10], 50)).float())


def test_curve_area_is_the_mean_accuracy_over_log_budgets() -> None:
    assert budgets.curve_area([10, 100, 1000], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert budgets.curve_area([10, 100, 1000], [0.2, 0.4, 0.6]) == pytest.approx(0.4)
    # uneven log steps weigh each segment by its log length
    assert budgets.curve_area([10, 100, 10000], [0.0, 1.0, 1.0]) == pytest.approx((0.5 + 2) / 3)
    assert math.isnan(budgets.curve_area([100], [0.9]))


def _points(
    defense: str, method: str, param: str, accs: dict[int, list[float]], victim_acc=0.9
) -> list[dict]:
    return [
        {
            "attack": "knockoff",
            "victim": "v",
            "transfer": "t",
            "defense": defense,
            "method": method,
            "param": param,
            "seed": seed,
            "queries": q,
            "clone_acc": acc,
            "test_images": 400,
            "defender_acc": victim_acc if method == "None" else 0.8,
        }
        for q, per_seed in accs.items()
        for seed, acc in enumerate(per_seed)
    ]


def test_budget_table_gives_area_interval_and_reach() -> None:
    points = pd.DataFrame(
        _points(
            "undefended", "None", "0.0", {10: [0.5, 0.6, 0.7], 100: [0.8, 0.85, 0.9], 1000: [0.88, 0.9, 0.92]}
        )
        + _points("DCP", "DCP", "1.5", {10: [0.1, 0.1, 0.1], 100: [0.2, 0.2, 0.2], 1000: [0.3, 0.3, 0.3]})
    )
    per_seed = budgets.budget_seeds(points)
    assert per_seed["victim_acc"].eq(0.9).all()  # the undefended oracle's accuracy, every row
    assert (
        per_seed.loc[per_seed["defense"] == "DCP", "relative"].round(4).tolist()
        == [0.1111] * 3 + [0.2222] * 3 + [0.3333] * 3
    )
    curves = budgets.budget_curves(per_seed)
    assert len(curves) == 6 and curves["n_seeds"].eq(3).all()
    table = budgets.budget_table(per_seed, curves).set_index("defense")
    reach = f"queries_to_{budgets.REACH_FRACTION:g}"
    # mean curve 0.6, 0.85, 0.9 against 0.9 of a 0.9 victim (0.81): first reached at 100 queries
    assert table.loc["undefended", reach] == 100
    assert math.isnan(table.loc["DCP", reach])  # never within the budget
    seeds_auc = [
        budgets.curve_area([10, 100, 1000], [a, b, c])
        for a, b, c in [(0.5, 0.8, 0.88), (0.6, 0.85, 0.9), (0.7, 0.9, 0.92)]
    ]
    assert table.loc["undefended", "auc"] == pytest.approx(np.mean(seeds_auc))
    assert (
        table.loc["undefended", "auc_ci_low"]
        < table.loc["undefended", "auc"]
        < table.loc["undefended", "auc_ci_high"]
    )
    assert table.loc["DCP", "auc"] == pytest.approx(0.2)
    assert table.loc["DCP", "budgets"] == 3 and table.loc["DCP", "queries"] == 1000


def test_a_seed_missing_a_budget_is_not_averaged_away() -> None:
    rows = _points("undefended", "None", "0.0", {10: [0.5, 0.6], 100: [0.8, 0.9]})
    per_seed = budgets.budget_seeds(pd.DataFrame(rows[:-1]))  # seed 1 has no 100-query clone
    table = budgets.budget_table(per_seed, budgets.budget_curves(per_seed))
    assert math.isnan(table["auc"].iloc[0])


def test_datafree_points_keep_the_best_student_on_validation_so_far(tmp_path) -> None:
    record = {
        "attack": "maze",
        "oracle_view": "probabilities",
        "preset": "maze_cifar10",
        "victim": "v",
        "defense": "undefended",
        "method": "None",
        "param": "0.0",
        "seed": 0,
        "test_images": 300,
        "defender_acc": 0.95,
        "clone_acc": 0.52,
        "fidelity": 0.5,
        "clone_acc_final": 0.99,
        "fidelity_final": 0.9,
        "best_val_acc": 0.5,
        "queries": 400,
    }
    save_json(record, tmp_path / "metrics.json")
    pd.DataFrame(
        {
            "queries_used": [100, 200, 300, 400],
            "val_acc": [0.3, 0.5, 0.4, 0.5],  # the third is worse, the fourth only ties
            "test_acc": [0.31, 0.52, 0.9, 0.99],
        }
    ).to_csv(tmp_path / "history.csv", index=False)
    points = budgets.datafree_points([tmp_path / "metrics.json"], [tmp_path / "history.csv"])
    assert points["queries"].tolist() == [100, 200, 300, 400]
    assert points["clone_acc"].tolist() == [0.31, 0.52, 0.52, 0.52]
    assert set(points["transfer"]) == {budgets.NO_TRANSFER}
    pd.DataFrame({"queries_used": [100], "val_acc": [0.3]}).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match="no test_acc column"):
        budgets.datafree_points([tmp_path / "metrics.json"], [tmp_path / "old.csv"])
