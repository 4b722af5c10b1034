"""KnockoffNets (Orekondy et al., "Knockoff Nets: Stealing Functionality of Black-Box Models",
CVPR 2019), soft-label variant: a clone trained on (transfer image, answered posterior) pairs.

The attacker queries the oracle once per transfer image (``answer_queries`` stores the defended
answers), then trains a fresh clone on augmented views of the images against the answers to the
un-augmented ones, with the SGD + cosine recipe of docs/methods.md. The clone is selected on a
validation split (never the test set). ``labels: argmax`` trains on one-hot answers instead (the
countermeasure of the GRAD² evaluation, Mazeika et al., ICML 2022); ``labels: restored`` trains
on the answers through a restorer the defense-aware attacker learned
(:mod:`msdefense.attacks.defense_aware`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from ..models import build_model
from ..training import BestOnValidation, SGDRecipe, attacker_labels, distill

#: soft: the answered posteriors; argmax: their top-1 labels; restored: the answers through the
#: defense-aware attacker's restorer (:mod:`msdefense.attacks.defense_aware`)
LABELS = ("soft", "argmax", "restored")
#: the key of ``knockoff`` that narrows each label kind but soft to some defenses
NARROWING = {"argmax": "argmax_defenses", "restored": "restored_defenses"}


@dataclass(frozen=True, kw_only=True)
class KnockoffConfig:
    """The clone's architecture, training recipe and the labels it learns from."""

    arch: str
    recipe: SGDRecipe
    labels: str = "soft"

    def __post_init__(self) -> None:
        if self.labels not in LABELS:
            raise ValueError(f"knockoff.labels must be one of {LABELS}, got {self.labels!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], labels: str | None = None) -> KnockoffConfig:
        """From the config's ``knockoff`` section, for one of its label kinds (default: the first)."""
        return cls(arch=cfg["arch"], recipe=SGDRecipe.from_config(cfg), labels=labels or label_kinds(cfg)[0])


def labelled_for(transfer_cfg: Mapping[str, Any], victim_dataset: str) -> bool:
    """Whether a transfer set carries labels in the victim's label space: held-out training
    images, or a dataset source that is the victim's own dataset. The defense-aware attacker
    trains its shadows on these labels; photo crops have none, and another dataset's labels name
    other classes."""
    source = transfer_cfg["source"]
    return source == "heldout" or (source == "dataset" and transfer_cfg.get("dataset") == victim_dataset)


def label_kinds(
    cfg: Mapping[str, Any], defense: str | None = None, labelled: bool | None = None
) -> tuple[str, ...]:
    """The label kinds the config's ``knockoff`` section trains clones on: ``labels`` as a name
    or a list of names (default ``soft``), each one of :data:`LABELS`. Given ``defense``, argmax
    is left out unless ``argmax_defenses`` (default: every defense) names it, and restored unless
    ``restored_defenses`` does: the label-only and the defense-aware attackers can be run against a
    few defenses only, where clones cost too much for all. Given ``labelled`` false (a transfer
    set without labels in the victim's label space, :func:`labelled_for`), restored is left out:
    the attacker's shadow models need its query images' labels."""
    given = cfg.get("labels", "soft")
    kinds = (given,) if isinstance(given, str) else tuple(given)
    bad = [k for k in kinds if k not in LABELS]
    if bad or not kinds or len(set(kinds)) != len(kinds):
        raise ValueError(f"knockoff.labels must be distinct names among {LABELS}, got {given!r}")
    if defense is not None:
        for kind, key in NARROWING.items():
            only = cfg.get(key)
            if only is not None and defense not in only:
                kinds = tuple(k for k in kinds if k != kind) or kinds
    if labelled is False:
        kinds = tuple(k for k in kinds if k != "restored") or kinds
    return kinds


def knockoff_for(cfg: Mapping[str, Any], defense: str, labelled: bool) -> dict[str, Any]:
    """The ``knockoff`` section as one sweep job (``defense``; ``labelled``: :func:`labelled_for`
    its transfer set) sees it: ``labels`` its own kinds (:func:`label_kinds`), without the keys
    that narrow the kinds to defenses, and without ``defense_aware`` where it trains no restored
    clone. A job's parameters are this view, so adding a kind for one defense, or retuning the
    defense-aware attacker, reruns only the jobs it changes."""
    kinds = label_kinds(cfg, defense, labelled)
    view = {key: value for key, value in cfg.items() if key not in NARROWING.values()}
    view["labels"] = list(kinds)
    if "restored" not in kinds:
        view.pop("defense_aware", None)
    return view


def budget_view(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``knockoff`` section as the budget clones see it: the clone recipe and ``budgets``,
    without the label kinds and the attackers only the full-budget clones meet."""
    return {k: v for k, v in cfg.items() if k not in ("labels", "defense_aware", *NARROWING.values())}


def check_narrowing(cfg: Mapping[str, Any], defenses: Mapping[str, Mapping[str, Any]]) -> None:
    """``argmax_defenses`` / ``restored_defenses`` of the ``knockoff`` section ``cfg``: known
    defenses, the undefended one among them, next to soft clones (``ValueError`` naming the key)."""
    kinds = label_kinds(cfg)
    for kind, key in NARROWING.items():
        only = cfg.get(key)
        if only is None:
            continue
        if "soft" not in kinds or kind not in kinds:
            raise ValueError(
                f"knockoff.{key} narrows the {kind} clones next to the soft ones: "
                f"set knockoff.labels to include soft and {kind}, or drop the key"
            )
        unknown = [name for name in only if name not in defenses]
        if unknown:
            raise ValueError(
                f"knockoff.{key}: unknown defense {unknown[0]!r}; known defenses: {', '.join(sorted(defenses))}"
            )
        if not any(defenses[name]["method"] == "None" for name in only):
            raise ValueError(
                f"knockoff.{key} must name the undefended oracle (a defense with method: None): "
                f"every {kind} row is compared with it"
            )


def budget_sizes(fractions: Sequence[float], n: int) -> list[int]:
    """The nested query budgets of ``knockoff.budgets`` (fractions of a query set of ``n``
    images, each in (0, 1)): ``round(f · n)`` queries, at least one, ascending and distinct; the
    full set itself is the sweep's own clone, not one of them."""
    bad = [f for f in fractions if not 0 < f < 1]
    if bad:
        raise ValueError(f"knockoff.budgets: fractions of the query set in (0, 1), got {bad[0]!r}")
    return sorted({max(1, round(f * n)) for f in fractions} - {n})


def query_order(n: int, seed: int) -> np.ndarray:
    """The order in which the attacker spends its queries: a permutation of the ``n`` query
    images drawn from ``seed`` (the attack's stream), so that the first ``b`` queries are a random
    sample of the set whatever its stored order, and the budgets are nested."""
    return np.random.default_rng(seed).permutation(n)


def first_queries(
    transfer: Dataset, answers: Tensor, order: np.ndarray, budget: int, *, epoch: int | None = None
) -> tuple[Dataset, Tensor]:
    """The first ``budget`` queries of ``order`` and their answers: all a clone at that budget
    sees (the answers of the other queries are never read). ``epoch``: cycle through them to this
    many samples (the full query set's size), so that an epoch of a budget clone has as many SGD
    steps as one of the full clone."""
    if not 0 < budget <= len(order):
        raise ValueError(f"a budget of {budget} queries: the query set has {len(order)}")
    picked = order[:budget]
    if epoch is not None:
        picked = np.resize(picked, max(epoch, budget))
    return Subset(transfer, picked.tolist()), answers[torch.from_numpy(picked)]


@dataclass
class KnockoffResult:
    """The selected clone, the clone after the last epoch, and the selection's bookkeeping."""

    clone: nn.Module
    final: nn.Module
    best_val_acc: float
    best_epoch: int
    history: list[dict[str, Any]]

    @property
    def epochs_run(self) -> int:
        """Epochs trained (the recipe's cap, or fewer when the validation accuracy plateaued)."""
        return len(self.history)

    @property
    def stop_reason(self) -> str:
        """Why training stopped (:data:`msdefense.schedules.STOP_REASONS`)."""
        return str(self.history[-1]["stop_reason"]) if self.history else "cap"

    def val_curve(self, digits: int = 4) -> list[float]:
        """The validation accuracy after every epoch: the curve the clone was selected on."""
        return [round(float(row["val_acc"]), digits) for row in self.history]


def run_knockoff(
    answers: Tensor,
    transfer: Dataset,
    cfg: KnockoffConfig,
    *,
    val: Dataset,
    num_classes: int,
    in_channels: int,
    device: torch.device,
    seed: int,
    desc: str = "knockoff",
    backbone: str | None = None,
) -> KnockoffResult:
    """Train a clone on ``transfer`` (augmented views) against ``answers`` ``[N, K]`` (the defended
    posteriors of the un-augmented images) and select it on ``val``. The caller seeds the global
    RNG (the clone's initialisation); ``seed`` orders the data. ``backbone``: a torchvision
    ImageNet state-dict file the clone starts from (``knockoff.pretrained``), head aside."""
    targets = attacker_labels(answers, cfg.labels)
    clone = build_model(cfg.arch, num_classes, in_channels)
    if backbone is not None:
        from ..pretrained import load_backbone

        load_backbone(clone, backbone, arch=cfg.arch)
    selector = BestOnValidation(val, device)
    history = distill(
        clone, transfer, targets, cfg.recipe, device=device, seed=seed, evaluate=selector, desc=desc
    )
    return KnockoffResult(
        clone=selector.best_model(clone),
        final=clone,
        best_val_acc=selector.best_acc,
        best_epoch=selector.best_step,
        history=history,
    )
