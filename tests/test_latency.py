"""Latency rows carry an interval of their ratio and stop measuring once it is narrow enough."""

from __future__ import annotations

import time

import numpy as np
import torch

from msdefense.latency import MIN_PAIRS, ratio_interval, timed_pairs


def test_ratio_interval_brackets_the_ratio_and_narrows_with_more_pairs() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 1000):
        plain = 1.0 + 0.1 * rng.random(n)
        defended = 2.0 * plain * (1 + 0.05 * rng.standard_normal(n))
        ratio, low, high = ratio_interval(defended, plain, seed=1)
        assert low <= ratio <= high and 1.8 < ratio < 2.2
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # ~ 1 / sqrt(n)


def test_ratio_interval_cancels_drift_shared_by_a_pair() -> None:
    """Interleaving: a slow phase that hits both calls of a pair leaves the ratio's interval narrow."""
    drift = np.repeat([1.0, 3.0], 50)  # the machine gets 3x slower half-way
    ratio, low, high = ratio_interval(1.5 * drift, drift, seed=0)
    assert ratio == low == high == 1.5


def _sleeper(seconds: float):
    def call(x: torch.Tensor) -> None:
        time.sleep(seconds)

    return call


def test_timed_pairs_stops_when_narrow_and_marks_noisy_rows() -> None:
    x = torch.zeros(1)
    cpu = torch.device("cpu")
    steady = timed_pairs(
        _sleeper(0.002),
        _sleeper(0.004),
        x,
        device=cpu,
        repeats=5,
        target_halfwidth=0.5,
        max_seconds=5,
        seed=0,
    )
    # narrow from the start, but never reliable on fewer than MIN_PAIRS pairs: two rounds of 5
    assert steady["reliable"] and steady["repeats"] == MIN_PAIRS == 10
    assert steady["overhead_ci_low"] <= steady["overhead_vs_none"] <= steady["overhead_ci_high"]
    assert 1.3 < steady["overhead_vs_none"] < 3

    noisy_calls = iter(np.random.default_rng(0).choice([0.0005, 0.01], size=10_000))

    def noisy(x: torch.Tensor) -> None:
        time.sleep(next(noisy_calls))

    capped = timed_pairs(
        _sleeper(0.001), noisy, x, device=cpu, repeats=4, target_halfwidth=0.001, max_seconds=0.2, seed=0
    )
    assert not capped["reliable"] and capped["repeats"] > 4  # more rounds, then the cap, then flagged


def test_max_seconds_bounds_a_round_of_a_huge_repeats() -> None:
    """``latency.repeats: 10**9`` once ran a billion pairs before looking at the clock."""
    cpu = torch.device("cpu")
    row = timed_pairs(
        _sleeper(0.001), _sleeper(0.001), torch.zeros(1), device=cpu,
        repeats=10**9, target_halfwidth=0.5, max_seconds=0.2, seed=0,
    )  # fmt: skip
    assert MIN_PAIRS <= row["repeats"] < 10_000
