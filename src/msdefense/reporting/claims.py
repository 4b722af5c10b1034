"""A verdict per claim of the two papers, computed from the per-seed tables (docs/statistics.md).

Every claim is a measured quantity per seed (a difference taken within the seed, so that what the
replicates share cancels: every victim meets the same attacker under one seed), its mean and 95%
interval over the seeds and the test images, and a threshold. The verdict is ``holds`` when the
interval lies on the claim's side of the threshold, ``fails`` when it lies on the other side,
``inconclusive`` when it straddles the threshold, when there are fewer than two seeds, or when
the experiment did not run the setting. Two verdicts say that no interval can decide the claim:

- ``not testable``: the attack behind the row does not work on the undefended victim (its clone
  stays below :data:`VALID_FRACTION` of the victim's accuracy on some seed), so a low clone
  accuracy behind a defense would say nothing about the defense;
- ``identical``: the two methods compared give the same answers and clones by construction (DCP
  above β = 1 is ReverseSigmoid), checked on the data.

Beside the raw verdict: the minimum detectable effect of the row's design (``mde``), its p-value
and a Holm-adjusted verdict within each paper (``verdict_holm``), the paper's own number where one
is public (``paper_value``) and a ``note`` (the reason of a ``not testable``, clones that stopped on
the epoch cap). The rule is written out next to each verdict; nothing is typed by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from .claim_inputs import (
    ATTACK_PAPERS,
    KHALED,
    OTHER_BASELINES,
    PAPER_SPEEDUP,
    STOPS,
    UTILITY_MARGIN,
    VALID_FRACTION,
    ClaimInputs,
    defense_drop,
    paired_arms,
    preset_attacks,
    strengths,
    tables_test_images,
)
from .matching import strongest_within
from .misleader_claims import misleader_claims
from .replicates import estimate, paired_bound
from .validity import attack_rows, capped, validity
from .verdicts import (
    ALPHA,
    CLAIMS_COLUMNS,
    INTERVAL_VERDICTS,
    NOT_PUBLIC,
    TIMING_NOTE,
    VERDICTS,
    Claim,
    bootstrap_estimate,
    holm_verdicts,
    join_notes,
    rule_threshold,
    verdict,
)
from .worst_case import attacker_name, deciding_note


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
    dcp_runs = knockoff[knockoff["method"] == "DCP"]
    fp32 = [v for v in dict.fromkeys(dcp_runs["victim"]) if v not in quantized]
    t = ClaimInputs(
        knockoff=knockoff,
        interpolation=interpolation,
        datafree=None if datafree is None or datafree.empty else datafree,
        misleader=misleader,
        quantized=tuple(quantized),
        victim=fp32[0] if fp32 else "a trained victim",
        n_test=tables_test_images(knockoff, datafree),
    )
    rows = attack_rows(t) + _dcp_rows(t) + _latency_claims(latency) + _quantized_rows(t)
    rows += _comparison_rows(t) + misleader_claims(t)
    table = pd.DataFrame(rows, columns=CLAIMS_COLUMNS)
    table["verdict_holm"] = holm_verdicts(table)
    return table


def _dcp_rows(t: ClaimInputs) -> list[dict[str, object]]:
    knockoff, datafree, victim, n_test = t.knockoff, t.datafree, t.victim, t.n_test
    rows = []
    stops = Claim(
        KHALED,
        "DCP stops {attack}",
        STOPS,
        True,
        "clone accuracy of the undefended oracle minus that behind DCP at its strongest swept β, per seed",
    )
    mine = knockoff[knockoff["victim"] == victim]
    for (transfer, labels), runs in mine.groupby(["transfer", "labels"], sort=False):
        claim = stops.named(attack=attacker_name(labels))
        rows.append(
            claim.row(
                f"{victim}, KnockoffNets on {transfer}",
                defense_drop(runs, "DCP", "clone_acc"),
                test_images=n_test,
                untestable=validity(runs, "KnockoffNets"),
                note=join_notes(
                    deciding_note(runs, "DCP"), capped(runs[runs["method"].isin(["None", "DCP"])])
                ),
            )
        )
    for family, name in (("dfme", "DFME"), ("maze", "MAZE")):
        claim = stops.named(attack=name)
        attacks = preset_attacks(datafree, family)
        if not attacks:
            rows.append(claim.row(f"{victim}, {name.lower()}", None))
        for attack in attacks:
            runs = datafree[(datafree["attack"] == attack) & (datafree["victim"] == victim)]  # type: ignore[index]
            rows.append(
                claim.row(
                    f"{victim}, {attack}",
                    defense_drop(runs, "DCP", "clone_acc"),
                    test_images=n_test,
                    untestable=validity(runs, attack) if len(runs) else "",
                )
            )
    cost = Claim(
        KHALED,
        "DCP costs little accuracy",
        UTILITY_MARGIN,
        False,
        "defended accuracy of the undefended oracle minus DCP's at its strongest swept β, per seed",
    )
    first = knockoff[knockoff["victim"] == victim]
    if len(first):  # the defended accuracy is the same for every transfer set and label kind
        kind = "soft" if (first["labels"] == "soft").any() else first["labels"].iloc[0]  # soft: every defense
        first = first[(first["transfer"] == first["transfer"].iloc[0]) & (first["labels"] == kind)]
    rows.append(
        cost.row(f"{victim}, test split", defense_drop(first, "DCP", "defender_acc"), test_images=n_test)
    )
    return rows


def _quantized_rows(t: ClaimInputs) -> list[dict[str, object]]:
    knockoff, datafree, quantized, n_test = t.knockoff, t.datafree, t.quantized, t.n_test
    works = Claim(
        KHALED,
        "DCP works on quantized (int8) victims",
        STOPS,
        True,
        "clone accuracy of the undefended int8 oracle minus that behind DCP at its strongest β, per seed",
    )
    if not quantized:
        return [works.row("an int8 victim", None)]
    rows = []
    for q in quantized:
        runs = knockoff[(knockoff["victim"] == q) & (knockoff["labels"] == "soft")]
        transfer = runs["transfer"].iloc[0] if len(runs) else ""
        runs = runs[runs["transfer"] == transfer]
        rows.append(
            works.row(
                f"{q}, KnockoffNets (soft labels) on {transfer}",
                defense_drop(runs, "DCP", "clone_acc"),
                test_images=n_test,
                untestable=validity(runs, "KnockoffNets") if len(runs) else "",
                note=capped(runs),
            )
        )
        for attack in preset_attacks(datafree, "dfme") + preset_attacks(datafree, "maze"):
            runs = datafree[(datafree["attack"] == attack) & (datafree["victim"] == q)]  # type: ignore[index]
            if (runs["method"] == "DCP").any():
                rows.append(
                    works.row(
                        f"{q}, {attack}",
                        defense_drop(runs, "DCP", "clone_acc"),
                        test_images=n_test,
                        untestable=validity(runs, attack),
                    )
                )
    return rows


def _identity(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two sweeps' runs at the same values give the same numbers on every seed."""
    cols = [c for c in ("defender_acc", "clone_acc", "fidelity", "l1_distance") if c in a]
    keyed = [x.assign(_p=x["param"].astype(float)).set_index(["seed", "_p"])[cols] for x in (a, b)]
    if len(keyed[0]) == 0 or not keyed[0].index.equals(keyed[1].index):
        return False
    return bool((keyed[0].sort_index().to_numpy() == keyed[1].sort_index().to_numpy()).all())


def _comparison_rows(t: ClaimInputs) -> list[dict[str, object]]:
    """DCP against ReverseSigmoid (identical above β = 1; at equal effective ε along the whole curves) and against
    the other baselines at equal accuracy cost, per attack."""
    knockoff, interpolation, datafree, victim, n_test = (
        t.knockoff,
        t.interpolation,
        t.datafree,
        t.victim,
        t.n_test,
    )
    rows = []
    same = Claim(
        KHALED,
        "DCP differs from ReverseSigmoid above β = 1",
        0.0,
        True,
        "clone accuracy behind ReverseSigmoid minus behind DCP at each β > 1 both swept, per seed "
        "(identical: every number equal on every seed, as the methods coincide there; at β = 1 "
        "DCP's gate still acts on the most confident answers: docs/methods.md)",
    )
    below = Claim(
        KHALED,
        "DCP outperforms ReverseSigmoid at equal effective ε",
        0.0,
        True,
        "clone error behind DCP minus behind ReverseSigmoid, each the strongest within a mean L1 "
        "distance of the answers of {eps} (interpolated), per seed",
    )
    others = Claim(
        KHALED,
        "DCP outperforms the other baselines (AM, Random, MAD, GRAD) at equal accuracy cost",
        0.0,
        True,
        "clone error behind DCP minus the highest clone error of AM, Random, MAD and GRAD, each the "
        f"strongest within a defender error of the undefended + {UTILITY_MARGIN * 100:g} point "
        "(interpolated), per seed",
    )
    methods = dict(zip(knockoff["defense"], knockoff["method"], strict=False))
    mine = knockoff[knockoff["victim"] == victim]
    for (transfer, labels), runs in mine.groupby(["transfer", "labels"], sort=False):
        if labels == "restored":
            continue  # compared through the worst case over attackers, one family member per comparison
        setting = f"{victim}, {attacker_name(labels)} on {transfer}"
        gate = validity(runs, "KnockoffNets")
        high = lambda r: r[r["param"].astype(float) > 1.0]  # noqa: E731
        dcp, rs = (high(runs[runs["method"] == m]) for m in ("DCP", "ReverseSigmoid"))
        common = sorted(set(dcp["param"].astype(float)) & set(rs["param"].astype(float)))
        if common:
            dcp, rs = (x[x["param"].astype(float).isin(common)] for x in (dcp, rs))
            arms = paired_arms(
                rs.groupby("seed")["clone_acc"].mean(), dcp.groupby("seed")["clone_acc"].mean()
            )
            identical = (
                f"DCP and ReverseSigmoid gave the same answers' numbers and clones at β = "
                f"{', '.join(f'{b:g}' for b in common)} on every seed"
                if _identity(dcp, rs)
                else ""
            )
            est = estimate(
                list(arms["a"] - arms["b"]),
                test_images=n_test,
                spread="difference",
                # identical clones agree on every test image: no test-set term
                per_image=0.0 if identical else paired_bound(arms["a"], arms["b"]),
            )
            rows.append(same.row_from(setting, est, identical=identical))
        part = interpolation[
            (interpolation["victim"] == victim)
            & (interpolation["transfer"] == transfer)
            & (interpolation["labels"] == labels)
        ]
        is_method = part["defense"].map(methods)
        for budget in sorted(b for b in set(part["budget"]) if str(b).startswith("l1_")):
            at = part[part["budget"] == budget]
            d, r = (
                at[is_method.loc[at.index] == m].groupby("seed")["clone_err"].max()
                for m in ("DCP", "ReverseSigmoid")
            )
            diff = paired_arms(d, r) if len(d) and len(r) else None
            claim = dataclasses.replace(below, quantity=below.quantity.format(eps=budget[3:]))
            rows.append(claim.row(f"{setting}, ε = {budget[3:]}", diff, test_images=n_test, untestable=gate))
        at = part[part["budget"] == f"defender_err_+{UTILITY_MARGIN * 100:g}pt"]
        dcp_err = at[is_method.loc[at.index] == "DCP"].groupby("seed")["clone_err"].max()
        best_other = at[is_method.loc[at.index].isin(OTHER_BASELINES)].groupby("seed")["clone_err"].max()
        diff = paired_arms(dcp_err, best_other) if len(dcp_err) and len(best_other) else None
        rows.append(others.row(setting, diff, test_images=n_test, untestable=gate, note=capped(runs)))
    for attack in preset_attacks(datafree, "dfme") + preset_attacks(datafree, "maze"):
        runs = datafree[(datafree["attack"] == attack) & (datafree["victim"] == victim)]  # type: ignore[index]
        rows.append(
            others.row(
                f"{victim}, {attack}",
                _matched_gap(runs, "DCP", OTHER_BASELINES),
                test_images=n_test,
                untestable=validity(runs, attack) if len(runs) else "",
            )
        )
    return rows


def _matched_gap(runs: pd.DataFrame, method: str, baselines: Sequence[str]) -> pd.DataFrame | None:
    """Per seed: the lowest clone accuracy of ``baselines`` minus ``method``'s, each the strongest
    point of its curve (undefended run, then its values) within a defended accuracy of the
    undefended one − :data:`UTILITY_MARGIN` (interpolated: docs/statistics.md). None when
    ``method`` or every baseline is missing."""
    if runs.empty or not (runs["method"] == method).any() or not runs["method"].isin(baselines).any():
        return None
    out = {}
    for seed, part in runs.groupby("seed", sort=True):
        undefended = part[part["method"] == "None"].head(1)
        present = [m for m in baselines if (part["method"] == m).any()]
        if undefended.empty or not present:
            continue
        target = float(undefended["defender_acc"].iloc[0]) - UTILITY_MARGIN
        out[seed] = (
            min(_clone_at(part, undefended, m, target) for m in present),
            _clone_at(part, undefended, method, target),
        )
    return pd.DataFrame.from_dict(out, orient="index", columns=["a", "b"], dtype=float)


def _clone_at(part: pd.DataFrame, undefended: pd.DataFrame, method: str, target: float) -> float:
    """The clone accuracy at ``method``'s strongest point within a defended accuracy of ``target``."""
    sweep = part[part["method"] == method]
    sweep = sweep.assign(_s=strengths(sweep)).sort_values("_s").drop(columns="_s")
    curve = pd.concat([undefended, sweep])
    point = strongest_within(list(curve["defender_acc"]), list(curve["clone_acc"]), target, at_least=True)
    return point.value(list(curve["clone_acc"].astype(float)))


def _latency_claims(latency: pd.DataFrame | None) -> list[dict[str, object]]:
    interval = "95% interval (of the two ratios' bootstrap intervals over interleaved repeats, combined conservatively)"
    faster = Claim(
        KHALED,
        f"DCP is faster than the state-of-the-art defenses (paper: ×{PAPER_SPEEDUP:g})",
        1.0,
        True,
        "time per query of the faster of MAD and GRAD over DCP's, at the largest batch size measured",
        interval,
        spread="none",
        paper_value=f"×{PAPER_SPEEDUP:g}",
    )
    by37 = Claim(
        KHALED,
        f"DCP is about ×{PAPER_SPEEDUP:g} faster than the slowest state-of-the-art defense",
        PAPER_SPEEDUP / 2,
        True,
        f"time per query of the slower of MAD and GRAD over DCP's on the slowest victim, largest batch size "
        f"(the threshold: within a factor 2 of the paper's ×{PAPER_SPEEDUP:g})",
        interval,
        spread="none",
        paper_value=f"×{PAPER_SPEEDUP:g}",
    )
    if latency is None or latency.empty:
        return [faster.row("latency", None, note=TIMING_NOTE), by37.row("latency", None, note=TIMING_NOTE)]
    rows = []
    big = latency[latency["batch_size"] == latency["batch_size"].max()]
    slowest = big.groupby("victim")["ms_per_query"].max().idxmax()
    for victim, part in big.groupby("victim", sort=True):
        # one row per method: its fastest defense where a config has several (two GRAD targets)
        p = part.sort_values("overhead_vs_none").groupby("method", sort=False).head(1).set_index("method")
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
            setting = f"{victim}, batch {int(p['batch_size'].iloc[0])}"
            rows.append(claim.row_from(setting, bootstrap_estimate(ratio, low, high), note=TIMING_NOTE))
    return rows


__all__ = [
    "ALPHA",
    "ATTACK_PAPERS",
    "CLAIMS_COLUMNS",
    "INTERVAL_VERDICTS",
    "NOT_PUBLIC",
    "UTILITY_MARGIN",
    "VALID_FRACTION",
    "VERDICTS",
    "Claim",
    "capped",
    "claims_table",
    "holm_verdicts",
    "rule_threshold",
    "validity",
    "verdict",
]
