"""What the claims of ``tables/claims`` read (docs/statistics.md): the papers and the thresholds
the verdicts compare with, the per-seed tables in one object, and the per-seed arms of a
difference taken from them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..sweeps import strength
from .replicates import test_images_of
from .verdicts import NOT_PUBLIC

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


def by_seed(df: pd.DataFrame, column: str) -> pd.Series:
    return df.set_index("seed")[column]


def strengths(runs: pd.DataFrame) -> pd.Series:
    """Each run's place along its defense's sweep, growing with protection (:func:`msdefense.sweeps.strength`)."""
    return pd.Series(
        [strength(m, p) for m, p in zip(runs["method"], runs["param"], strict=True)],
        index=runs.index,
        dtype=float,
    )


def strongest_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Each seed's run at the strongest swept value (the largest; TopK's and Rounding's smallest)."""
    runs = runs.assign(_p=strengths(runs))
    return runs[runs["_p"] == runs["_p"].max()].drop(columns="_p")


def paired_arms(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """The two arms of a per-seed difference ``a − b`` (columns ``a``, ``b``, indexed by seed),
    seeds without both dropped (:meth:`Claim.row`)."""
    return pd.DataFrame({"a": a, "b": b}).dropna()


def defense_drop(runs: pd.DataFrame, method: str, column: str) -> pd.DataFrame | None:
    """Per seed: the undefended run's ``column`` minus the defense's at its strongest value."""
    undefended, defended = runs[runs["method"] == "None"], runs[runs["method"] == method]
    if undefended.empty or defended.empty:
        return None
    return paired_arms(by_seed(undefended, column), by_seed(strongest_runs(defended), column))


def tables_test_images(*frames: pd.DataFrame | None) -> int | None:
    """The number of test images the accuracies of the tables count (None where not recorded)."""
    sizes = [n for f in frames if f is not None and (n := test_images_of(f)) is not None]
    return min(sizes) if sizes else None


def preset_attacks(datafree: pd.DataFrame | None, family: str, view: str = "probabilities") -> list[str]:
    if datafree is None or datafree.empty:
        return []
    hit = datafree[datafree["preset"].str.startswith(family) & (datafree["oracle_view"] == view)]
    return list(dict.fromkeys(hit["attack"]))


def attack_family(attack_or_preset: str) -> str:
    return "DFME" if "dfme" in attack_or_preset else "MAZE" if "maze" in attack_or_preset else "KnockoffNets"


@dataclass(frozen=True)
class ClaimInputs:
    """What every group of claims reads: the per-seed tables, the victim the DCP claims are about
    and the number of test images behind the accuracies."""

    knockoff: pd.DataFrame
    interpolation: pd.DataFrame
    datafree: pd.DataFrame | None
    misleader: pd.DataFrame | None
    quantized: tuple[str, ...]
    victim: str
    n_test: int | None


def arm_diff(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.DataFrame | None:
    if a.empty or b.empty:
        return None
    return paired_arms(by_seed(a, column), by_seed(b, column))
