"""Tables: GRAD² interpolation along each defense's curve, latency ratios, Markdown output."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from msdefense.io import save_json
from msdefense.reporting import (
    first_crossing,
    interpolation_table,
    latency_table,
    misleader_table,
    quantization_table,
    to_markdown,
)


def test_first_crossing_interpolates_within_the_first_segment_that_reaches() -> None:
    assert first_crossing([0.0, 0.1, 0.3], [0.2, 0.4, 0.8], 0.2) == pytest.approx(0.6)
    assert first_crossing([0.0, 0.1, 0.3], [0.2, 0.4, 0.8], 0.1) == pytest.approx(0.4)
    assert math.isnan(first_crossing([0.0, 0.1], [0.2, 0.4], 0.5))  # never reached
    # non-monotone curve: the first crossing in sweep order counts
    assert first_crossing([0.0, 0.4, 0.1, 0.6], [0.0, 1.0, 0.0, 1.0], 0.2) == pytest.approx(0.5)


def _knockoff_rows() -> pd.DataFrame:
    rows = [("undefended", "None", "0.0", 0.90, 0.80, 0.0)]
    rows += [
        ("X", "DCP", p, d, c, l1) for p, d, c, l1 in [("0.5", 0.89, 0.70, 0.2), ("1.0", 0.85, 0.40, 0.6)]
    ]
    return pd.DataFrame(
        [
            {"victim": "v", "transfer": "t", "defense": n, "method": m, "param": p, "defender_acc": d,
             "clone_acc": c, "l1_distance": l1, "fidelity": c, "queries": 10}
            for n, m, p, d, c, l1 in rows
        ]
    )  # fmt: skip


def test_interpolation_table_prepends_the_undefended_point() -> None:
    table = interpolation_table(_knockoff_rows()).set_index("defense")
    # defender error 0.10 (undefended) -> 0.11 at ε=0.5 -> 0.15 at ε=1.0; clone error 0.2 -> 0.3 -> 0.6
    assert table.loc["X", "clone_err_at_defender_err_+1pt"] == pytest.approx(0.3)
    assert table.loc["X", "clone_err_at_defender_err_+2pt"] == pytest.approx(0.3 + 0.25 * 0.3)
    assert table.loc["X", "clone_err_at_defender_err_+5pt"] == pytest.approx(0.6)
    assert table.loc["X", "clone_err_at_l1_0.1"] == pytest.approx(0.25)  # between ε=0 (l1 0) and l1 0.2
    assert table.loc["X", "clone_err_at_l1_0.5"] == pytest.approx(0.3 + 0.75 * 0.3)
    assert "undefended" not in table.index


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


def test_misleader_table_matches_each_baseline_to_the_ensembles_defended_accuracy(tmp_path) -> None:
    save_json({"victim": "ens", "teacher": "v", "dataset": "digits"}, tmp_path / "ens.json")
    teacher = _knockoff_rows()
    ensemble = pd.DataFrame(
        [{"victim": "ens", "transfer": "t", "defense": "undefended", "method": "None", "param": "0.0",
          "defender_acc": 0.86, "clone_acc": 0.30, "l1_distance": 0.0, "fidelity": 0.3, "queries": 10}]
    )  # fmt: skip
    datafree = pd.DataFrame(
        [
            {"attack": "dfme", "victim": v, "defense": d, "method": m, "param": p, "defender_acc": a,
             "clone_acc": c, "fidelity": c}
            for v, d, m, p, a, c in [
                ("v", "undefended", "None", "0.0", 0.90, 0.85),
                ("v", "X", "DCP", "0.5", 0.89, 0.50),
                ("ens", "undefended", "None", "0.0", 0.86, 0.20),
            ]
        ]
    )  # fmt: skip
    table = misleader_table([tmp_path / "ens.json"], pd.concat([teacher, ensemble]), datafree)
    knock = table[table["attack"] == "knockoff/t"].set_index("row")
    assert list(knock.index) == ["undefended", "X", "MISLEADER"]
    assert knock.loc["X", "param"] == "1.0"  # defender acc 0.85 is closest to the ensemble's 0.86
    assert knock.loc["X", "defender_acc_gap"] == pytest.approx(-0.01)
    assert knock.loc["MISLEADER", "clone_acc"] == 0.30
    dfme = table[table["attack"] == "dfme"].set_index("row")
    assert dfme.loc["X", "param"] == "0.5"  # the only DCP value DFME ran
    assert dfme.loc["MISLEADER", "clone_acc"] == 0.20


def test_quantization_table_pairs_int8_with_its_fp32_source(tmp_path) -> None:
    save_json(
        {"victim": "q", "source": "v", "precision": "int8", "backend": "x86", "mode": "ptq", "test_acc": 0.9,
         "source_test_acc": 0.91, "size_mb": 0.06, "source_size_mb": 0.24},
        tmp_path / "q.json",
    )  # fmt: skip
    lat = [
        {"victim": v, "method": m, "batch_size": b, "ms_per_query": 9.0, "ms_undefended": ms}
        for v, b, ms in [("v", 1, 1.0), ("v", 64, 0.1), ("q", 1, 0.5)]
        for m in ("DCP", "GRAD")  # no None row needed: every row carries its undefended pass
    ]
    save_json(lat, tmp_path / "lat.json")
    table = quantization_table([tmp_path / "q.json"], [tmp_path / "lat.json"]).set_index("victim")
    assert table.loc["v", "precision"] == "fp32" and table.loc["q", "backend"] == "x86"
    assert table.loc["q", "ms_per_query_b1"] == 0.5 and math.isnan(table.loc["q", "ms_per_query_b64"])
    assert table.loc["v", "size_mb"] == 0.24 and table.loc["q", "accuracy"] == 0.9
