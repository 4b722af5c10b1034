"""A verdict per claim of the two papers, computed from the per-seed tables (docs/statistics.md).

Every claim is a measured quantity per seed (a difference taken within the seed, so that what the
replicates share cancels), its mean and 95% t-interval over the seeds, and a threshold. The
verdict is ``holds`` when the interval lies on the claim's side of the threshold, ``fails`` when
it lies on the other side, ``inconclusive`` when it straddles the threshold, when there are fewer
than two seeds, or when the experiment did not run the setting. The rule is written out in the
table next to each verdict; nothing is typed by hand.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from .replicates import t_interval

CLAIMS_COLUMNS = ["paper", "claim", "setting", "measured", "ci_low", "ci_high", "n_seeds", "verdict", "rule"]
VERDICTS = ("holds", "fails", "inconclusive")
KHALED = "Khaled et al. 2023 (DCP)"
CHENG = "Cheng et al. 2025 (MISLEADER)"
#: A clone accuracy drop of at least this much "stops" an attack (10 points).
STOPS = 0.10
#: A defended accuracy drop below this much is a "small accuracy cost" (1 point).
SMALL_COST = 0.01
#: MISLEADER "keeps utility" when the ensemble is at most this far below its teacher (2 points).
KEEPS_UTILITY = 0.02
PAPER_SPEEDUP = 37.0


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
    """A claim, what is measured for it and the threshold its verdict compares the interval with."""

    paper: str
    claim: str
    threshold: float
    above: bool
    quantity: str  # what is measured, in words (goes into the rule)
    interval: str = "95% t-interval over seeds"

    def rule(self) -> str:
        side = ">" if self.above else "<"
        other = "<" if self.above else ">"
        return (
            f"{self.quantity}; holds if the {self.interval} is {side} {self.threshold:g}, "
            f"fails if it is {other} {self.threshold:g}, else inconclusive"
        )

    def row(self, setting: str, per_seed: pd.Series | None) -> dict[str, object]:
        """The claim's row from its per-seed values (``None``: the setting was not run)."""
        values = [] if per_seed is None else list(per_seed.dropna())
        mean, low, high = t_interval(values) if values else (math.nan, math.nan, math.nan)
        return self.row_from(
            setting if values else f"{setting}: not run in this experiment", mean, low, high, len(values)
        )

    def row_from(self, setting: str, mean: float, low: float, high: float, n: int) -> dict[str, object]:
        """The claim's row from a measured value and its interval."""
        return {
            "paper": self.paper,
            "claim": self.claim,
            "setting": setting,
            "measured": mean,
            "ci_low": low,
            "ci_high": high,
            "n_seeds": n,
            "verdict": verdict(low, high, self.threshold, above=self.above),
            "rule": self.rule(),
        }

    def named(self, **names: str) -> Claim:
        """The claim with ``{name}`` fields of its text filled in."""
        return dataclasses.replace(self, claim=self.claim.format(**names))


def _by_seed(df: pd.DataFrame, column: str) -> pd.Series:
    return df.set_index("seed")[column]


def _strongest(runs: pd.DataFrame) -> pd.DataFrame:
    """Each seed's run at the largest swept value."""
    runs = runs.assign(_p=runs["param"].astype(float))
    return runs[runs["_p"] == runs["_p"].max()].drop(columns="_p")


def _drop(runs: pd.DataFrame, method: str, column: str) -> pd.Series | None:
    """Per seed: the undefended run's ``column`` minus the defense's at its strongest value."""
    undefended, defended = runs[runs["method"] == "None"], runs[runs["method"] == method]
    if undefended.empty or defended.empty:
        return None
    return (_by_seed(undefended, column) - _by_seed(_strongest(defended), column)).dropna()


def _preset_attacks(datafree: pd.DataFrame | None, family: str, view: str = "probabilities") -> list[str]:
    if datafree is None or datafree.empty:
        return []
    hit = datafree[datafree["preset"].str.startswith(family) & (datafree["oracle_view"] == view)]
    return list(dict.fromkeys(hit["attack"]))


def claims_table(
    *,
    knockoff: pd.DataFrame,
    interpolation: pd.DataFrame,
    latency: pd.DataFrame | None = None,
    datafree: pd.DataFrame | None = None,
    misleader: pd.DataFrame | None = None,
    quantized: Sequence[str] = (),
) -> pd.DataFrame:
    """The claims table (:data:`CLAIMS_COLUMNS`) from the per-seed tables (``*_seeds.csv``) and the
    latency table; ``quantized`` names the int8 victims. The settings are taken from the data: the
    first victim with a DCP sweep against KnockoffNets, the data-free attacks of the DFME and MAZE
    presets in the correct oracle view, the MISLEADER ensembles of ``misleader``."""
    rows: list[dict[str, object]] = []
    dcp_runs = knockoff[knockoff["method"] == "DCP"]
    fp32 = [v for v in dict.fromkeys(dcp_runs["victim"]) if v not in quantized]
    victim = fp32[0] if fp32 else "a trained victim"

    stops = Claim(
        KHALED,
        "DCP stops {attack}",
        STOPS,
        True,
        "clone accuracy of the undefended oracle minus that behind DCP at its strongest swept β, per seed",
    )
    mine = knockoff[knockoff["victim"] == victim]
    for (transfer, labels), runs in mine.groupby(["transfer", "labels"], sort=False):
        claim = stops.named(attack=f"KnockoffNets ({labels} labels)")
        rows.append(claim.row(f"{victim}, KnockoffNets on {transfer}", _drop(runs, "DCP", "clone_acc")))
    for family, name in (("dfme", "DFME"), ("maze", "MAZE")):
        claim = stops.named(attack=name)
        attacks = _preset_attacks(datafree, family)
        for attack in attacks or [name.lower()]:
            runs = (
                None
                if not attacks
                else datafree[(datafree["attack"] == attack) & (datafree["victim"] == victim)]
            )
            rows.append(
                claim.row(f"{victim}, {attack}", None if runs is None else _drop(runs, "DCP", "clone_acc"))
            )
    cost = Claim(
        KHALED,
        "DCP costs little accuracy",
        SMALL_COST,
        False,
        "defended accuracy of the undefended oracle minus DCP's at its strongest swept β, per seed",
    )
    first = knockoff[knockoff["victim"] == victim]
    if len(first):  # the defended accuracy is the same for every transfer set and label kind
        first = first[
            (first["transfer"] == first["transfer"].iloc[0]) & (first["labels"] == first["labels"].iloc[0])
        ]
    rows.append(cost.row(f"{victim}, test split", _drop(first, "DCP", "defender_acc")))

    rows += _latency_claims(latency)

    works = Claim(
        KHALED,
        "DCP works on quantized (int8) victims",
        STOPS,
        True,
        "KnockoffNets clone accuracy of the undefended int8 oracle minus that behind DCP at its strongest β, per seed",
    )
    for q in quantized:
        runs = knockoff[(knockoff["victim"] == q) & (knockoff["labels"] == "soft")]
        transfer = runs["transfer"].iloc[0] if len(runs) else ""
        rows.append(
            works.row(
                f"{q}, KnockoffNets (soft labels) on {transfer}",
                _drop(runs[runs["transfer"] == transfer], "DCP", "clone_acc"),
            )
        )
    if not quantized:
        rows.append(works.row("an int8 victim", None))

    better = Claim(
        KHALED,
        "DCP outperforms the baselines at equal accuracy cost",
        0.0,
        True,
        "clone error behind DCP minus the highest clone error of any other defense, each the strongest "
        "within a defender error of the undefended + 1 point (interpolated), per seed",
    )
    interp = interpolation[
        (interpolation["victim"] == victim) & (interpolation["budget"] == "defender_err_+1pt")
    ]
    methods = dict(zip(knockoff["defense"], knockoff["method"], strict=False))
    for (transfer, labels), part in interp.groupby(["transfer", "labels"], sort=False):
        is_dcp = part["defense"].map(methods) == "DCP"
        dcp = part[is_dcp].groupby("seed")["clone_err"].max()
        best_other = part[~is_dcp].groupby("seed")["clone_err"].max()
        diff = (dcp - best_other).dropna() if len(dcp) and len(best_other) else None
        rows.append(better.row(f"{victim}, KnockoffNets ({labels} labels) on {transfer}", diff))

    rows += _misleader_claims(misleader, datafree)
    return pd.DataFrame(rows, columns=CLAIMS_COLUMNS)


def _latency_claims(latency: pd.DataFrame | None) -> list[dict[str, object]]:
    interval = "95% interval (of the two ratios' bootstrap intervals over interleaved repeats, combined conservatively)"
    faster = Claim(
        KHALED,
        f"DCP is faster than the state-of-the-art defenses (paper: ×{PAPER_SPEEDUP:g})",
        1.0,
        True,
        "time per query of the faster of MAD and GRAD over DCP's, at the largest batch size measured",
        interval,
    )
    by37 = Claim(
        KHALED,
        f"DCP is about ×{PAPER_SPEEDUP:g} faster than the slowest state-of-the-art defense",
        PAPER_SPEEDUP / 2,
        True,
        f"time per query of the slower of MAD and GRAD over DCP's on the slowest victim, largest batch size "
        f"(the threshold: within a factor 2 of the paper's ×{PAPER_SPEEDUP:g})",
        interval,
    )
    if latency is None or latency.empty:
        return [faster.row("latency", None), by37.row("latency", None)]
    rows = []
    big = latency[latency["batch_size"] == latency["batch_size"].max()]
    slowest = big.groupby("victim")["ms_per_query"].max().idxmax()
    for victim, part in big.groupby("victim", sort=True):
        p = part.set_index("method")
        if not {"DCP", "MAD", "GRAD"} <= set(p.index):
            continue
        ratios = {
            m: (
                p.loc[m, "overhead_vs_none"] / p.loc["DCP", "overhead_vs_none"],
                p.loc[m, "overhead_ci_low"] / p.loc["DCP", "overhead_ci_high"],
                p.loc[m, "overhead_ci_high"] / p.loc["DCP", "overhead_ci_low"],
            )
            for m in ("MAD", "GRAD")
        }
        for claim, pick, chosen in ((faster, min, True), (by37, max, victim == slowest)):
            if not chosen:
                continue
            ratio, low, high = pick(ratios.values(), key=lambda r: r[0])
            rows.append(
                claim.row_from(f"{victim}, batch {int(p['batch_size'].iloc[0])}", ratio, low, high, 1)
            )
    return rows


def _misleader_claims(
    misleader: pd.DataFrame | None, datafree: pd.DataFrame | None
) -> list[dict[str, object]]:
    keeps = Claim(
        CHENG,
        "MISLEADER keeps utility",
        KEEPS_UTILITY,
        False,
        "test accuracy of the undefended teacher minus the ensemble's, per seed",
    )
    lowers = Claim(
        CHENG,
        "MISLEADER lowers clone accuracy under {attack}",
        STOPS,
        True,
        "clone accuracy of the undefended teacher minus the ensemble's, same attack, per seed",
    )
    beats = Claim(
        CHENG,
        "MISLEADER beats the baselines at equal accuracy",
        0.0,
        True,
        "lowest clone accuracy of any baseline on the teacher, matched at the ensemble's defended "
        "accuracy (strongest setting at least as accurate, interpolated), minus the ensemble's, per seed",
    )
    if misleader is None or misleader.empty:
        return [keeps.row("a MISLEADER ensemble", None), beats.row("a MISLEADER ensemble", None)]
    rows = []
    views = {}
    if datafree is not None and not datafree.empty:
        views = dict(zip(datafree["attack"], datafree["oracle_view"] + " view", strict=False))
    for ensemble, part in misleader[misleader["row"] == "MISLEADER"].groupby("victim", sort=True):
        table = misleader[misleader["attack"].isin(set(part["attack"]))]
        first = sorted(set(part["attack"]))[0]
        teacher, mine = (
            table[(table["attack"] == first) & (table["row"] == r)] for r in ("undefended", "MISLEADER")
        )
        rows.append(keeps.row(f"{ensemble}, test split", _diff(teacher, mine, "defender_acc")))
        for attack in sorted(set(part["attack"])):
            at = table[table["attack"] == attack]
            name = (
                "DFME"
                if "dfme" in attack
                else "MAZE"
                if "maze" in attack
                else "KnockoffNets (argmax labels)"
                if attack.startswith("knockoff_argmax")
                else "KnockoffNets"
            )
            claim = lowers.named(attack=name)
            setting = f"{ensemble}, {attack}" + (f" ({views[attack]})" if attack in views else "")
            undefended, ens = at[at["row"] == "undefended"], at[at["row"] == "MISLEADER"]
            rows.append(claim.row(setting, _diff(undefended, ens, "clone_acc")))
            baselines = at[~at["row"].isin(["undefended", "MISLEADER"])]
            if not baselines.empty:
                best = baselines.groupby("seed")["clone_acc"].min()
                rows.append(beats.row(setting, (best - _by_seed(ens, "clone_acc")).dropna()))
    return rows


def _diff(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.Series | None:
    if a.empty or b.empty:
        return None
    return (_by_seed(a, column) - _by_seed(b, column)).dropna()
