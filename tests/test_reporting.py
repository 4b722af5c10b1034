"""Tables: GRAD² interpolation along each defense's curve, latency ratios, Markdown output."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from msdefense.io import save_json
from msdefense.reporting import (
    interpolation_seeds,
    interpolation_table,
    knockoff_table,
    latency_table,
    misleader_seeds,
    misleader_table,
    quantization_seeds,
    quantization_table,
    strongest_within,
    summarise,
    t_interval,
    to_markdown,
)
from msdefense.reporting.replicates import estimate


def test_t_interval_is_students_over_the_seeds() -> None:
    mean, low, high = t_interval([0.80, 0.90, 0.85])
    # s = 0.05, t(0.975, 2) = 4.302653, half-width = 4.302653 * 0.05 / sqrt(3)
    assert mean == pytest.approx(0.85)
    assert high - mean == pytest.approx(4.302653 * 0.05 / math.sqrt(3), rel=1e-6)
    assert mean - low == pytest.approx(high - mean)
    one = t_interval([0.7])
    assert one[0] == 0.7 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in t_interval([0.7, float("nan")]))  # a missing seed is not averaged away


def test_summarise_gives_mean_count_and_interval_per_setting() -> None:
    per_seed = pd.DataFrame(
        {"k": ["a", "a", "b"], "seed": [0, 1, 0], "clone_acc": [0.4, 0.6, 0.9], "queries": [10, 10, 10],
         "method": ["X", "X", "Y"]}
    )  # fmt: skip
    table = summarise(per_seed, ["k"]).set_index("k")
    assert list(table.columns) == [
        "n_seeds",
        "clone_acc",
        "clone_acc_ci_low",
        "clone_acc_ci_high",
        "queries",
        "method",
    ]
    assert table.loc["a", "n_seeds"] == 2 and table.loc["a", "clone_acc"] == pytest.approx(0.5)
    # t(0.975, 1) * s / sqrt(2) = 1.27: the interval is clipped to the accuracy's range [0, 1]
    assert (table.loc["a", "clone_acc_ci_low"], table.loc["a", "clone_acc_ci_high"]) == (0.0, 1.0)
    assert table.loc["b", "n_seeds"] == 1 and math.isnan(table.loc["b", "clone_acc_ci_low"])
    with pytest.raises(ValueError, match="same setting and seed"):
        summarise(pd.concat([per_seed, per_seed.head(1)]), ["k"])


def test_intervals_count_the_test_images_as_well_as_the_seeds() -> None:
    seeds = [0.80, 0.90, 0.85]
    plain = estimate(seeds)
    assert plain.high - plain.mean == pytest.approx(4.302653 * 0.05 / math.sqrt(3), rel=1e-6)
    # an accuracy over 359 test images: se² = s²/n + m(1 − m)/N
    est = estimate(seeds, test_images=359, spread="fraction")
    se = math.sqrt(0.05**2 / 3 + 0.85 * 0.15 / 359)
    assert est.se == pytest.approx(se) and est.high - est.mean == pytest.approx(4.302653 * se, rel=1e-6)
    # a difference of two accuracies of the same images: (1 − m)(1 + m)/N bounds the per-image variance
    diff = estimate([0.5, 0.6, 0.55], test_images=100, spread="difference")
    assert diff.se == pytest.approx(math.sqrt(0.05**2 / 3 + (1 - 0.55**2) / 100))
    # identical seeds still leave the test set's sampling error
    assert estimate([0.9] * 5, test_images=359, spread="fraction").se == pytest.approx(math.sqrt(0.09 / 359))
    per_seed = pd.DataFrame({"k": ["a"] * 3, "seed": [0, 1, 2], "clone_acc": seeds, "test_images": [359] * 3})
    row = summarise(per_seed, ["k"]).iloc[0]
    assert row["clone_acc_ci_high"] == pytest.approx(est.high)


def test_power_and_p_value_follow_the_t_distribution() -> None:
    est = estimate([0.1, 0.2, 0.3, 0.2, 0.2])
    # MDE = (t(0.975, 4) + t(0.8, 4)) * se; p of the two-sided test against 0 and against the mean
    assert est.mde() == pytest.approx((2.776445 + 0.940965) * est.se, rel=1e-5)
    assert est.p_value(est.mean) == pytest.approx(1.0)
    assert est.p_value(0.0) < 0.05 and est.p_value(0.15) > 0.05


def test_strongest_within_interpolates_a_falling_curve() -> None:
    acc, clone = [0.90, 0.89, 0.85], [0.80, 0.70, 0.40]
    point = strongest_within(acc, clone, 0.87, at_least=True)  # halfway between 0.89 and 0.85
    assert point.match == "interpolated" and point.value(clone) == pytest.approx(0.55)
    assert point.value([0.0, 0.5, 1.0]) == pytest.approx(0.75)  # any column at the same point
    assert strongest_within(acc, clone, 0.89, at_least=True).value(clone) == pytest.approx(0.70)


def test_strongest_within_takes_the_strongest_setting_on_a_plateau_or_a_tie() -> None:
    # accuracy-preserving defense: every setting keeps 0.99 ≥ target, the strongest is taken
    plateau = strongest_within([0.99, 0.99, 0.99], [0.9, 0.5, 0.6], 0.97, at_least=True)
    assert plateau.match == "within" and plateau.value([0.9, 0.5, 0.6]) == 0.5
    tie = strongest_within([0.99, 0.98, 0.97], [0.9, 0.4, 0.4], 0.95, at_least=True)
    assert tie.index == 2  # equal clone accuracy: the later (stronger) setting
    # non-monotone: a run inside the budget beats the crossing
    bumpy = strongest_within([0.9, 0.88, 0.80], [0.8, 0.3, 0.9], 0.85, at_least=True)
    assert bumpy.index == 1 and bumpy.match == "within"
    # budget from above (effective ε at most 0.4)
    eps = strongest_within([0.0, 0.2, 0.6], [0.8, 0.6, 0.2], 0.4, at_least=False)
    assert eps.match == "interpolated" and eps.value([0.8, 0.6, 0.2]) == pytest.approx(0.4)


def test_strongest_within_says_when_nothing_matches() -> None:
    point = strongest_within([0.90, 0.85], [0.8, 0.4], 0.95, at_least=True)
    assert point.match == "unmatched" and math.isnan(point.value([0.8, 0.4]))


def _knockoff_rows(seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rows = [("undefended", "None", "0.0", 0.90, 0.80, 0.0)]
    rows += [
        ("X", "DCP", p, d, c, l1) for p, d, c, l1 in [("0.5", 0.89, 0.70, 0.2), ("1.0", 0.85, 0.40, 0.6)]
    ]
    return pd.DataFrame(
        [
            {"victim": "v", "transfer": "t", "labels": "soft", "defense": n, "param": p, "seed": seed,
             "defender_acc": d, "clone_acc": c + shift, "fidelity": c, "l1_distance": l1, "queries": 10, "method": m}
            for n, m, p, d, c, l1 in rows
        ]
    )  # fmt: skip


def test_interpolation_table_prepends_the_undefended_point() -> None:
    table = interpolation_table(interpolation_seeds(_knockoff_rows())).set_index(["defense", "budget"])
    x = table.loc["X"]
    # defender error 0.10 (undefended) -> 0.11 at ε=0.5 -> 0.15 at ε=1.0; clone error 0.2 -> 0.3 -> 0.6
    assert x.loc["defender_err_+1pt", "clone_err"] == pytest.approx(0.3)
    assert x.loc["defender_err_+2pt", "clone_err"] == pytest.approx(0.3 + 0.25 * 0.3)
    assert x.loc["defender_err_+2pt", "param"] == pytest.approx(0.5 + 0.25 * 0.5)
    assert x.loc["defender_err_+5pt", "clone_err"] == pytest.approx(0.6)
    assert x.loc["l1_0.1", "clone_err"] == pytest.approx(0.25)  # between ε=0 (l1 0) and l1 0.2
    assert x.loc["l1_0.5", "clone_err"] == pytest.approx(0.3 + 0.75 * 0.3)
    assert x.loc["l1_0.5", "match"] == "interpolated"
    assert "undefended" not in table.index.get_level_values("defense")


def test_interpolation_table_interpolates_each_seed_then_averages() -> None:
    per_seed = interpolation_seeds(pd.concat([_knockoff_rows(0), _knockoff_rows(1, shift=-0.1)]))
    row = interpolation_table(per_seed).set_index(["defense", "budget"]).loc[("X", "defender_err_+2pt")]
    # seed 0: 0.375, seed 1: 0.475 (every clone accuracy 0.1 lower)
    assert row["n_seeds"] == 2 and row["clone_err"] == pytest.approx(0.425)
    assert row["clone_err_ci_low"] < 0.375 and row["clone_err_ci_high"] > 0.475


def test_latency_table_ratios(tmp_path) -> None:
    rows = [
        {
            "victim": "v",
            "defense": n,
            "method": m,
            "batch_size": 64,
            "ms_per_query": ms,
            "ms_per_query_iqr": 0.01,
            "overhead_vs_none": ms / 1.0,
            "overhead_ci_low": ms - 0.01,
            "overhead_ci_high": ms + 0.01,
            "reliable": True,
            "repeats": 20,
        }
        for n, m, ms in [("undefended", "None", 1.0), ("DCP", "DCP", 1.05), ("MAD", "MAD", 2.1)]
    ]
    save_json(rows, tmp_path / "v.json")
    table = latency_table([tmp_path / "v.json"]).set_index("defense")
    assert table.loc["MAD", "slowdown_vs_dcp"] == pytest.approx(2.0)
    assert table.loc["DCP", "slowdown_vs_dcp"] == pytest.approx(1.0)
    assert list(table.index) == ["DCP", "MAD", "undefended"]  # by name, not by a measured ratio


def test_markdown_leaves_missing_values_blank() -> None:
    md = to_markdown(pd.DataFrame({"a": ["x"], "b": [float("nan")], "c": [0.5]}))
    assert md.splitlines()[2] == "| x |  | 0.5000 |"


def _ensemble(tmp_path, seed: int = 0) -> str:
    path = tmp_path / f"ens{seed}.json"
    save_json({"victim": "ens", "teacher": "v", "dataset": "digits", "seed": seed}, path)
    return path


def test_misleader_table_matches_each_baseline_to_the_ensembles_defended_accuracy(tmp_path) -> None:
    teacher = _knockoff_rows()
    ensemble = pd.DataFrame(
        [{"victim": "ens", "transfer": "t", "labels": "soft", "defense": "undefended", "method": "None", "param": "0.0",
          "seed": 0, "defender_acc": 0.86, "clone_acc": 0.30, "l1_distance": 0.0, "fidelity": 0.3, "queries": 10}]
    )  # fmt: skip
    datafree = pd.DataFrame(
        [
            {"attack": "dfme", "victim": v, "defense": d, "method": m, "param": p, "seed": 0, "defender_acc": a,
             "clone_acc": c, "fidelity": c}
            for v, d, m, p, a, c in [
                ("v", "undefended", "None", "0.0", 0.90, 0.85),
                ("v", "X", "DCP", "0.5", 0.89, 0.50),
                ("v", "Y", "Random", "0.5", 0.80, 0.30),
                ("ens", "undefended", "None", "0.0", 0.86, 0.20),
            ]
        ]
    )  # fmt: skip
    per_seed = misleader_seeds([_ensemble(tmp_path)], pd.concat([teacher, ensemble]), datafree)
    table = misleader_table(per_seed)
    knock = table[table["attack"] == "knockoff/t"].set_index("row")
    assert list(knock.index) == ["undefended", "X", "MISLEADER"]
    # interpolated at the ensemble's 0.86 between 0.89 (clone 0.70) and 0.85 (clone 0.40), not the nearest run
    assert knock.loc["X", "match"] == "interpolated"
    assert knock.loc["X", "defender_acc"] == pytest.approx(0.86)
    assert knock.loc["X", "clone_acc"] == pytest.approx(0.70 - 0.75 * 0.30)
    assert knock.loc["X", "param"] == pytest.approx(0.875)
    assert knock.loc["MISLEADER", "clone_acc"] == 0.30
    dfme = table[table["attack"] == "dfme"].set_index("row")
    # DCP's one run keeps 0.89 ≥ 0.86: its strongest setting, marked as not on the target
    assert dfme.loc["X", "match"] == "within" and dfme.loc["X", "clone_acc"] == 0.50
    # Random's one run falls below: interpolated between the undefended run and it
    assert dfme.loc["Y", "match"] == "interpolated"
    assert dfme.loc["Y", "clone_acc"] == pytest.approx(0.85 - 0.4 * 0.55)
    assert dfme.loc["MISLEADER", "clone_acc"] == 0.20


def test_misleader_table_says_when_a_baseline_cannot_be_matched(tmp_path) -> None:
    ensemble = pd.DataFrame(
        [{"victim": "ens", "transfer": "t", "labels": "soft", "defense": "undefended", "method": "None", "param": "0.0",
          "seed": s, "defender_acc": 0.95, "clone_acc": 0.30, "l1_distance": 0.0, "fidelity": 0.3, "queries": 10}
         for s in (0, 1)]
    )  # fmt: skip
    runs = pd.concat([_knockoff_rows(0), _knockoff_rows(1), ensemble])
    table = misleader_table(misleader_seeds([_ensemble(tmp_path, 0), _ensemble(tmp_path, 1)], runs, None))
    x = table.set_index("row").loc["X"]
    assert x["match"] == "unmatched" and math.isnan(x["clone_acc"]) and x["n_seeds"] == 2


def test_quantization_table_pairs_int8_with_its_fp32_source(tmp_path) -> None:
    for seed, acc in ((0, 0.9), (1, 0.8)):
        save_json(
            {"victim": "q", "source": "v", "precision": "int8", "backend": "x86", "mode": "ptq", "test_acc": acc,
             "source_test_acc": 0.91, "size_mb": 0.06, "source_size_mb": 0.24, "seed": seed},
            tmp_path / f"q{seed}.json",
        )  # fmt: skip
    lat = [
        {"victim": v, "method": m, "batch_size": b, "ms_per_query": 9.0, "ms_undefended": ms}
        for v, b, ms in [("v", 1, 1.0), ("v", 64, 0.1), ("q", 1, 0.5)]
        for m in ("DCP", "GRAD")  # no None row needed: every row carries its undefended pass
    ]
    save_json(lat, tmp_path / "lat.json")
    per_seed = quantization_seeds([tmp_path / "q0.json", tmp_path / "q1.json"], [tmp_path / "lat.json"])
    assert len(per_seed) == 4
    table = quantization_table(per_seed).set_index("victim")
    assert table.loc["v", "precision"] == "fp32" and table.loc["q", "backend"] == "x86"
    assert table.loc["q", "ms_per_query_b1"] == 0.5 and math.isnan(table.loc["q", "ms_per_query_b64"])
    assert table.loc["v", "size_mb"] == 0.24 and table.loc["q", "accuracy"] == pytest.approx(0.85)
    assert table.loc["q", "n_seeds"] == 2 and table.loc["q", "accuracy_ci_low"] < 0.8


def test_knockoff_table_keeps_the_method_and_counts_seeds() -> None:
    table = knockoff_table(pd.concat([_knockoff_rows(0), _knockoff_rows(1, shift=-0.1)]))
    assert set(table["n_seeds"]) == {2} and list(table["method"]) == ["None", "DCP", "DCP"]
    assert table.loc[0, "clone_acc"] == pytest.approx(0.75)


def test_two_accuracies_near_one_can_disagree_on_few_images() -> None:
    from msdefense.reporting.replicates import paired_bound

    # accuracies 0.99 and 0.98 differ on at most 3% of the images: variance ≤ 0.03 − 0.01²
    assert paired_bound([0.99, 0.99], [0.98, 0.98]) == pytest.approx(0.03 - 0.01**2)
    # far from 0 and 1 the bound is that of any difference in [−1, 1]
    assert paired_bound([0.5], [0.5]) == pytest.approx(1.0)
    tight = estimate([0.01, 0.012, 0.008], test_images=359, spread="difference", per_image=0.0299)
    loose = estimate([0.01, 0.012, 0.008], test_images=359, spread="difference")
    assert tight.high - tight.mean < (loose.high - loose.mean) / 4
