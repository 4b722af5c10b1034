"""The verdict machinery of ``tables/claims`` (docs/statistics.md): a claim's rule, its row from
per-seed values, the verdict kinds and the Holm adjustment within each paper. The claims
themselves, their thresholds and the validity gate are in :mod:`msdefense.reporting.claims`."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .replicates import CI_LEVEL, POWER, Estimate, estimate, paired_bound

CLAIMS_COLUMNS = [
    "paper",
    "claim",
    "setting",
    "measured",
    "ci_low",
    "ci_high",
    "n_seeds",
    "mde",
    "p_value",
    "verdict",
    "verdict_holm",
    "paper_value",
    "note",
    "rule",
]
VERDICTS = ("holds", "fails", "inconclusive", "not testable", "identical")
#: The verdicts an interval decides (the others are set by the data's validity or construction).
INTERVAL_VERDICTS = ("holds", "fails", "inconclusive")
NOT_PUBLIC = "not public"
#: The note of a row that rests on wall-clock timings: its value, interval and verdict may differ
#: between two runs of one config (every other row is the same, byte for byte).
TIMING_NOTE = "timing-dependent: rests on this machine's wall-clock timings, which differ from run to run"
#: Significance level of the raw and the Holm-adjusted verdicts.
ALPHA = 1 - CI_LEVEL


def verdict(low: float, high: float, threshold: float, *, above: bool) -> str:
    """``holds`` if the interval [low, high] lies strictly on the claim's side of ``threshold``
    (above it if ``above``, else below it), ``fails`` if strictly on the other side, else
    ``inconclusive`` (also for a blank interval)."""
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if above:
        return "holds" if low > threshold else "fails" if high < threshold else "inconclusive"
    return "holds" if high < threshold else "fails" if low > threshold else "inconclusive"


_RULE = re.compile(r"; holds if the .+? is ([<>]) (\S+?), fails if")


def rule_threshold(rule: str) -> tuple[float, bool]:
    """The threshold and side (``above``) a rule text of :meth:`Claim.rule` states."""
    match = _RULE.search(rule)
    if not match:
        raise ValueError(f"not a claim rule: {rule!r}")
    return float(match[2]), match[1] == ">"


@dataclass(frozen=True)
class Claim:
    """A claim, what is measured for it and the threshold its verdict compares the interval with.

    ``spread``: how the test images enter the interval (:data:`~msdefense.reporting.replicates.SPREADS`;
    ``difference`` for a difference of two accuracies, the usual case)."""

    paper: str
    claim: str
    threshold: float
    above: bool
    quantity: str  # what is measured, in words (goes into the rule)
    interval: str = "95% interval over seeds and test images"
    spread: str = "difference"
    paper_value: str = NOT_PUBLIC

    def rule(self) -> str:
        side = ">" if self.above else "<"
        other = "<" if self.above else ">"
        return (
            f"{self.quantity}; holds if the {self.interval} is {side} {self.threshold:g}, "
            f"fails if it is {other} {self.threshold:g}, else inconclusive"
        )

    def row(
        self,
        setting: str,
        per_seed: pd.Series | pd.DataFrame | None,
        *,
        test_images: int | None = None,
        untestable: str = "",
        note: str = "",
    ) -> dict[str, object]:
        """The claim's row from its per-seed values (``None``: the setting was not run), either
        the measured values or the two arms of a difference (columns ``a``, ``b``: the value is
        ``a − b`` and its test-set term the tighter :func:`paired_bound`); ``untestable``: why
        the attack behind it does not work (the verdict is then ``not testable``)."""
        per_image = None
        if isinstance(per_seed, pd.DataFrame):
            arms = per_seed.dropna()
            per_seed = arms["a"] - arms["b"]
            per_image = paired_bound(arms["a"], arms["b"]) if len(arms) else None
        values = [] if per_seed is None else list(per_seed.dropna())
        est = estimate(values, test_images=test_images, spread=self.spread, per_image=per_image)
        if not values:
            setting = f"{setting}: not run in this experiment"
            # nothing measured: no verdict, and the row says why (the config asks for no such run)
            untestable = untestable or "not run in this experiment: the config has no run for this setting"
        return self.row_from(setting, est, untestable=untestable, note=note)

    def row_from(
        self, setting: str, est: Estimate, *, untestable: str = "", identical: str = "", note: str = ""
    ) -> dict[str, object]:
        """The claim's row from a measured value and its interval."""
        p = est.p_value(self.threshold)
        if untestable:
            decided, note = "not testable", join_notes(untestable, note)
        elif identical:
            decided, note = "identical", join_notes(identical, note)
        else:
            decided = verdict(est.low, est.high, self.threshold, above=self.above)
        return {
            "paper": self.paper,
            "claim": self.claim,
            "setting": setting,
            "measured": est.mean,
            "ci_low": est.low,
            "ci_high": est.high,
            "n_seeds": est.n,
            "mde": est.mde(),
            "p_value": p,
            "verdict": decided,
            "verdict_holm": decided,  # adjusted per paper by holm_verdicts
            "paper_value": self.paper_value,
            "note": note,
            "rule": self.rule(),
        }

    def named(self, **names: str) -> Claim:
        """The claim with ``{name}`` fields of its text filled in."""
        return dataclasses.replace(self, claim=self.claim.format(**names))


def join_notes(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def holm_verdicts(rows: pd.DataFrame) -> pd.Series:
    """Each row's verdict after Holm's step-down adjustment of the p-values of the rows an
    interval decides, within each paper: ``holds`` / ``fails`` where the adjusted p is below
    :data:`ALPHA` (the side as in the raw verdict's rule), else ``inconclusive``; rows without a
    p-value or with a verdict the data set keep theirs. A paper's timing-dependent rows
    (:data:`TIMING_NOTE`) form a family of their own, so that run-to-run timing noise cannot move
    the adjusted verdicts of the other rows."""
    out = rows["verdict"].copy()
    timing = rows["note"].fillna("").astype(str).str.contains(TIMING_NOTE, regex=False)
    for _, part in rows.groupby([rows["paper"], timing], sort=False):
        tested = part[part["verdict"].isin(INTERVAL_VERDICTS) & part["p_value"].notna()]
        if tested.empty:
            continue
        order = tested["p_value"].sort_values(kind="stable")
        m = len(order)
        adjusted = np.maximum.accumulate([min(1.0, (m - i) * p) for i, p in enumerate(order)])
        for (index, _), p_adj in zip(order.items(), adjusted, strict=True):
            row = rows.loc[index]
            if p_adj >= ALPHA:
                out[index] = "inconclusive"
            else:
                threshold, above = rule_threshold(str(row["rule"]))
                out[index] = "holds" if (row["measured"] > threshold) == above else "fails"
    return out


def bootstrap_estimate(value: float, low: float, high: float) -> Estimate:
    """A measured value with a bootstrap interval, as an :class:`Estimate` whose standard error
    is the interval's half-width over the normal quantile (for its p-value and MDE, an
    approximation: docs/statistics.md). Counted as one replicate."""
    se = (high - low) / (2 * stats.norm.ppf(0.5 + CI_LEVEL / 2))
    return _NormalEstimate(value, se, 1, low, high)


class _NormalEstimate(Estimate):
    """An :class:`Estimate` whose p-value and MDE use the normal distribution (a bootstrap interval)."""

    def p_value(self, threshold: float) -> float:
        if not math.isfinite(self.se) or self.se <= 0:
            return math.nan
        return float(2 * stats.norm.sf(abs(self.mean - threshold) / self.se))

    def mde(self, power: float = POWER) -> float:
        if not math.isfinite(self.se):
            return math.nan
        return float((stats.norm.ppf(0.5 + CI_LEVEL / 2) + stats.norm.ppf(power)) * self.se)
