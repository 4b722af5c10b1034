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
from dataclasses import dataclass

import pandas as pd

from .matching import strongest_within
from .replicates import estimate, paired_bound, test_images_of
from .verdicts import (
    ALPHA,
    CLAIMS_COLUMNS,
    INTERVAL_VERDICTS,
    NOT_PUBLIC,
    VERDICTS,
    Claim,
    bootstrap_estimate,
    holm_verdicts,
    join_notes,
    rule_threshold,
    verdict,
)

KHALED = "Khaled et al. 2023 (DCP)"
CHENG = "Cheng et al. 2025 (MISLEADER)"
ATTACK_PAPERS = {
    "KnockoffNets": "Orekondy et al. 2019 (KnockoffNets)",
    "DFME": "Truong et al. 2021 (DFME)",
    "MAZE": "Kariyappa et al. 2021 (MAZE)",
}
#: The attack papers' own figures (abstracts; docs/methods.md cites them): the clone's accuracy as
#: a fraction of the victim's.
ATTACK_PAPER_VALUES = {
    "KnockoffNets": NOT_PUBLIC,
    "DFME": "0.92× (CIFAR-10, 20M queries); 0.99× (SVHN, 2M)",
    "MAZE": "0.90×–0.99× (FashionMNIST, SVHN, GTSRB, CIFAR-10; 30M queries on CIFAR-10)",
}
#: A clone accuracy drop of at least this much "stops" an attack (10 points).
STOPS = 0.10
#: The one utility margin of both papers (neither states its own): a defended accuracy at most
#: this far below the undefended victim's is "little cost" / "keeps utility" (1 point; the same
#: budget as "at equal accuracy cost", docs/statistics.md).
UTILITY_MARGIN = 0.01
#: An attack works when its undefended clone reaches this fraction of the victim's accuracy on
#: every seed; rows resting on an attack that does not are ``not testable``.
VALID_FRACTION = 0.7
PAPER_SPEEDUP = 37.0
#: The baselines of "DCP outperforms the other baselines" (ReverseSigmoid has its own row).
OTHER_BASELINES = ("AdaptiveMisinformation", "Random", "MAD", "GRAD")


def _by_seed(df: pd.DataFrame, column: str) -> pd.Series:
    return df.set_index("seed")[column]


def _strongest(runs: pd.DataFrame) -> pd.DataFrame:
    """Each seed's run at the largest swept value."""
    runs = runs.assign(_p=runs["param"].astype(float))
    return runs[runs["_p"] == runs["_p"].max()].drop(columns="_p")


def _arms(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """The two arms of a per-seed difference ``a − b`` (columns ``a``, ``b``, indexed by seed),
    seeds without both dropped (:meth:`Claim.row`)."""
    return pd.DataFrame({"a": a, "b": b}).dropna()


def _drop(runs: pd.DataFrame, method: str, column: str) -> pd.DataFrame | None:
    """Per seed: the undefended run's ``column`` minus the defense's at its strongest value."""
    undefended, defended = runs[runs["method"] == "None"], runs[runs["method"] == method]
    if undefended.empty or defended.empty:
        return None
    return _arms(_by_seed(undefended, column), _by_seed(_strongest(defended), column))


def _test_images(*frames: pd.DataFrame | None) -> int | None:
    """The number of test images the accuracies of the tables count (None where not recorded)."""
    sizes = [n for f in frames if f is not None and (n := test_images_of(f)) is not None]
    return min(sizes) if sizes else None


def validity(runs: pd.DataFrame, attack: str) -> str:
    """Why the attack in ``runs`` (one victim's runs of one attack) does not work undefended, or
    ``""``: its undefended clone must reach :data:`VALID_FRACTION` of the victim's accuracy on
    every seed (an attack run by no seed undefended cannot be checked, and is not testable)."""
    undefended = runs[runs["method"] == "None"]
    if undefended.empty:
        return f"{attack} was not run against the undefended victim: its strength is unknown"
    ratio = _by_seed(undefended, "clone_acc") / _by_seed(undefended, "defender_acc")
    bad = ratio[ratio < VALID_FRACTION]
    if bad.empty:
        return ""
    seeds = ", ".join(f"{r:.2f} on seed {s}" for s, r in bad.items())
    return (
        f"{attack} does not work undefended: its clone reaches {seeds} of the victim's accuracy "
        f"(< {VALID_FRACTION:g} on some seed)"
    )


def capped(runs: pd.DataFrame) -> str:
    """A note naming the KnockoffNets clones of ``runs`` that stopped on the epoch cap, or ``""``."""
    if "stop_reason" not in runs or runs.empty:
        return ""
    hit = runs[runs["stop_reason"] == "cap"]
    if hit.empty:
        return ""
    cap = int(hit["epochs_run"].max()) if "epochs_run" in hit else "the cap"
    return f"{len(hit)} of {len(runs)} clones stopped on the cap of {cap} epochs, not on a plateau"


def _preset_attacks(datafree: pd.DataFrame | None, family: str, view: str = "probabilities") -> list[str]:
    if datafree is None or datafree.empty:
        return []
    hit = datafree[datafree["preset"].str.startswith(family) & (datafree["oracle_view"] == view)]
    return list(dict.fromkeys(hit["attack"]))


def _family(attack_or_preset: str) -> str:
    return "DFME" if "dfme" in attack_or_preset else "MAZE" if "maze" in attack_or_preset else "KnockoffNets"


@dataclass(frozen=True)
class _Tables:
    """What every group of claims reads: the per-seed tables, the victim the DCP claims are about
    and the number of test images behind the accuracies."""

    knockoff: pd.DataFrame
    interpolation: pd.DataFrame
    datafree: pd.DataFrame | None
    misleader: pd.DataFrame | None
    quantized: tuple[str, ...]
    victim: str
    n_test: int | None


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
    t = _Tables(
        knockoff=knockoff,
        interpolation=interpolation,
        datafree=None if datafree is None or datafree.empty else datafree,
        misleader=misleader,
        quantized=tuple(quantized),
        victim=fp32[0] if fp32 else "a trained victim",
        n_test=_test_images(knockoff, datafree),
    )
    rows = _attack_rows(t) + _dcp_rows(t) + _latency_claims(latency) + _quantized_rows(t)
    rows += _comparison_rows(t) + _misleader_claims(t)
    table = pd.DataFrame(rows, columns=CLAIMS_COLUMNS)
    table["verdict_holm"] = holm_verdicts(table)
    return table


def _attack_rows(t: _Tables) -> list[dict[str, object]]:
    """Does each attack work undefended? One row per attack, victim (and transfer set, labels)."""
    knockoff, datafree, n_test = t.knockoff, t.datafree, t.n_test
    rows = []

    def works(family: str, name: str) -> Claim:
        return Claim(
            ATTACK_PAPERS[family],
            f"{name} clones the undefended victim",
            VALID_FRACTION,
            True,
            "undefended clone's test accuracy over the victim's, per seed (the validity gate: every "
            f"seed must reach {VALID_FRACTION:g} for the rows that rest on this attack)",
            spread="fraction",
            paper_value=ATTACK_PAPER_VALUES[family],
        )

    def ratio(runs: pd.DataFrame) -> pd.Series | None:
        und = runs[runs["method"] == "None"]
        return None if und.empty else (_by_seed(und, "clone_acc") / _by_seed(und, "defender_acc"))

    for (victim, transfer, labels), runs in knockoff.groupby(["victim", "transfer", "labels"], sort=False):
        claim = works("KnockoffNets", f"KnockoffNets ({labels} labels)")
        reason = validity(runs, "KnockoffNets")
        rows.append(
            claim.row(
                f"{victim}, KnockoffNets on {transfer}",
                ratio(runs),
                test_images=n_test,
                note=join_notes(reason, capped(runs[runs["method"] == "None"])),
            )
        )
    if datafree is not None and not datafree.empty:
        for (attack, view, victim), runs in datafree.groupby(["attack", "oracle_view", "victim"], sort=False):
            family = _family(str(runs["preset"].iloc[0]))
            claim = works(family, f"{family} ({view} view)")
            rows.append(
                claim.row(f"{victim}, {attack}", ratio(runs), test_images=n_test, note=validity(runs, attack))
            )
    return rows


def _dcp_rows(t: _Tables) -> list[dict[str, object]]:
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
        claim = stops.named(attack=f"KnockoffNets ({labels} labels)")
        rows.append(
            claim.row(
                f"{victim}, KnockoffNets on {transfer}",
                _drop(runs, "DCP", "clone_acc"),
                test_images=n_test,
                untestable=validity(runs, "KnockoffNets"),
                note=capped(runs[runs["method"].isin(["None", "DCP"])]),
            )
        )
    for family, name in (("dfme", "DFME"), ("maze", "MAZE")):
        claim = stops.named(attack=name)
        attacks = _preset_attacks(datafree, family)
        if not attacks:
            rows.append(claim.row(f"{victim}, {name.lower()}", None))
        for attack in attacks:
            runs = datafree[(datafree["attack"] == attack) & (datafree["victim"] == victim)]  # type: ignore[index]
            rows.append(
                claim.row(
                    f"{victim}, {attack}",
                    _drop(runs, "DCP", "clone_acc"),
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
        first = first[
            (first["transfer"] == first["transfer"].iloc[0]) & (first["labels"] == first["labels"].iloc[0])
        ]
    rows.append(cost.row(f"{victim}, test split", _drop(first, "DCP", "defender_acc"), test_images=n_test))
    return rows


def _quantized_rows(t: _Tables) -> list[dict[str, object]]:
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
                _drop(runs, "DCP", "clone_acc"),
                test_images=n_test,
                untestable=validity(runs, "KnockoffNets") if len(runs) else "",
                note=capped(runs),
            )
        )
        for attack in _preset_attacks(datafree, "dfme") + _preset_attacks(datafree, "maze"):
            runs = datafree[(datafree["attack"] == attack) & (datafree["victim"] == q)]  # type: ignore[index]
            if (runs["method"] == "DCP").any():
                rows.append(
                    works.row(
                        f"{q}, {attack}",
                        _drop(runs, "DCP", "clone_acc"),
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


def _comparison_rows(t: _Tables) -> list[dict[str, object]]:
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
        setting = f"{victim}, KnockoffNets ({labels} labels) on {transfer}"
        gate = validity(runs, "KnockoffNets")
        high = lambda r: r[r["param"].astype(float) > 1.0]  # noqa: E731
        dcp, rs = (high(runs[runs["method"] == m]) for m in ("DCP", "ReverseSigmoid"))
        common = sorted(set(dcp["param"].astype(float)) & set(rs["param"].astype(float)))
        if common:
            dcp, rs = (x[x["param"].astype(float).isin(common)] for x in (dcp, rs))
            arms = _arms(rs.groupby("seed")["clone_acc"].mean(), dcp.groupby("seed")["clone_acc"].mean())
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
            diff = _arms(d, r) if len(d) and len(r) else None
            claim = dataclasses.replace(below, quantity=below.quantity.format(eps=budget[3:]))
            rows.append(claim.row(f"{setting}, ε = {budget[3:]}", diff, test_images=n_test, untestable=gate))
        at = part[part["budget"] == f"defender_err_+{UTILITY_MARGIN * 100:g}pt"]
        dcp_err = at[is_method.loc[at.index] == "DCP"].groupby("seed")["clone_err"].max()
        best_other = at[is_method.loc[at.index].isin(OTHER_BASELINES)].groupby("seed")["clone_err"].max()
        diff = _arms(dcp_err, best_other) if len(dcp_err) and len(best_other) else None
        rows.append(others.row(setting, diff, test_images=n_test, untestable=gate, note=capped(runs)))
    for attack in _preset_attacks(datafree, "dfme") + _preset_attacks(datafree, "maze"):
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
    sweep = part[part["method"] == method].sort_values("param", key=lambda s: s.astype(float))
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
                claim.row_from(
                    f"{victim}, batch {int(p['batch_size'].iloc[0])}", bootstrap_estimate(ratio, low, high)
                )
            )
    return rows


def _misleader_claims(t: _Tables) -> list[dict[str, object]]:
    misleader, datafree, knockoff, n_test = t.misleader, t.datafree, t.knockoff, t.n_test
    keeps = Claim(
        CHENG,
        "MISLEADER keeps utility",
        UTILITY_MARGIN,
        False,
        "test accuracy of the undefended teacher minus the ensemble's, per seed",
    )
    lowers = Claim(
        CHENG,
        "MISLEADER lowers clone accuracy under {attack}",
        STOPS,
        True,
        "clone accuracy of the undefended teacher minus the ensemble's, same attack and attacker "
        "streams, per seed",
    )
    beats = Claim(
        CHENG,
        "MISLEADER beats the baselines at equal accuracy",
        0.0,
        True,
        "lowest clone accuracy of any baseline on the teacher, matched at the ensemble's defended "
        "accuracy (strongest setting at least as accurate, interpolated), minus the ensemble's, per seed",
    )
    original = Claim(
        CHENG,
        "MISLEADER lowers clone accuracy under {attack} as the original code measured it",
        STOPS,
        True,
        "clone accuracy of the undefended teacher read as probabilities minus the ensemble's read "
        "through the MISLEADER DFME fork's probabilities-as-logits view, same preset, per seed (not a "
        "matched comparison: it shows where the paper's effect comes from)",
    )
    if misleader is None or misleader.empty:
        return [keeps.row("a MISLEADER ensemble", None), beats.row("a MISLEADER ensemble", None)]
    rows = []
    views, presets = {}, {}
    if datafree is not None and not datafree.empty:
        views = dict(zip(datafree["attack"], datafree["oracle_view"], strict=False))
        presets = dict(zip(datafree["attack"], datafree["preset"], strict=False))
    for ensemble, part in misleader[misleader["row"] == "MISLEADER"].groupby("victim", sort=True):
        table = misleader[misleader["attack"].isin(set(part["attack"]))]
        first = sorted(set(part["attack"]))[0]
        teacher, mine = (
            table[(table["attack"] == first) & (table["row"] == r)] for r in ("undefended", "MISLEADER")
        )
        rows.append(
            keeps.row(f"{ensemble}, test split", _diff(teacher, mine, "defender_acc"), test_images=n_test)
        )
        teacher_name = str(teacher["victim"].iloc[0]) if len(teacher) else ""
        for attack in sorted(set(part["attack"])):
            at = table[table["attack"] == attack]
            name = _attack_name(attack)
            setting = f"{ensemble}, {attack}" + (f" ({views[attack]} view)" if attack in views else "")
            gate = _teacher_validity(attack, teacher_name, knockoff, datafree)
            undefended, ens = at[at["row"] == "undefended"], at[at["row"] == "MISLEADER"]
            rows.append(
                lowers.named(attack=name).row(
                    setting, _diff(undefended, ens, "clone_acc"), test_images=n_test, untestable=gate
                )
            )
            baselines = at[~at["row"].isin(["undefended", "MISLEADER"])]
            if not baselines.empty:
                best = baselines.groupby("seed")["clone_acc"].min()
                unmatched = sorted(set(ens["seed"]) - set(best.dropna().index))
                skipped = (
                    f"seed{'s' if len(unmatched) > 1 else ''} {', '.join(map(str, unmatched))} left out: "
                    "no baseline point is as accurate "
                    "as the ensemble there (tables/misleader, match unmatched)"
                    if unmatched
                    else ""
                )
                rows.append(
                    beats.row(
                        setting,
                        _arms(best, _by_seed(ens, "clone_acc")),
                        test_images=n_test,
                        untestable=gate,
                        note=skipped,
                    )
                )
            if views.get(attack) == "probabilities_as_logits":
                correct = [
                    a
                    for a in sorted(set(part["attack"]))
                    if views.get(a) == "probabilities" and presets.get(a) == presets.get(attack)
                ]
                for read_right in correct:
                    right = table[(table["attack"] == read_right) & (table["row"] == "undefended")]
                    rows.append(
                        original.named(attack=name).row(
                            f"{ensemble}: teacher under {read_right}, ensemble under {attack}",
                            _diff(right, ens, "clone_acc"),
                            test_images=n_test,
                            untestable=_teacher_validity(read_right, teacher_name, knockoff, datafree),
                        )
                    )
    return rows


def _attack_name(attack: str) -> str:
    if attack.startswith("knockoff_argmax"):
        return "KnockoffNets (argmax labels)"
    return _family(attack)


def _teacher_validity(
    attack: str, teacher: str, knockoff: pd.DataFrame, datafree: pd.DataFrame | None
) -> str:
    """:func:`validity` of a Table B attack (``knockoff/<transfer>``, ``knockoff_argmax/<transfer>``
    or a data-free attack's name) on the undefended teacher."""
    if attack.startswith("knockoff"):
        kind, transfer = attack.split("/", 1)
        labels = "soft" if kind == "knockoff" else kind.removeprefix("knockoff_")
        runs = knockoff[
            (knockoff["victim"] == teacher)
            & (knockoff["transfer"] == transfer)
            & (knockoff["labels"] == labels)
        ]
        return validity(runs, f"KnockoffNets ({labels} labels)")
    if datafree is None:
        return ""
    return validity(datafree[(datafree["attack"] == attack) & (datafree["victim"] == teacher)], attack)


def _diff(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.DataFrame | None:
    if a.empty or b.empty:
        return None
    return _arms(_by_seed(a, column), _by_seed(b, column))


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
