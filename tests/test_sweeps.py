"""The strongest value of a sweep (msdefense.sweeps): one rule for the claims, the worst case and
the clones that run at the strongest value alone (knockoff.strongest_only)."""

from __future__ import annotations

import pytest

from msdefense.sweeps import strongest


def test_the_strongest_value_is_the_largest_and_the_api_defenses_smallest() -> None:
    assert strongest("DCP", ["0.8", "1.5", "1.0"]) == "1.5"
    assert strongest("Random", ["1.0", "0.5"]) == "1.0"
    assert strongest("TopK", ["3", "1"]) == "1"  # k = 1: the label-only API
    assert strongest("Rounding", ["1", "2"]) == "1"  # one decimal
    assert strongest("None", ["0.0"]) == "0.0"
    with pytest.raises(ValueError, match="empty sweep"):
        strongest("DCP", [])
