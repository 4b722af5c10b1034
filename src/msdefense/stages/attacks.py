"""Stages of ``rules/attacks.smk``: KnockoffNets clones from stored answers, DFME / MAZE online.

Every attack ends in one metrics record per sweep value with the same accuracy fields:
``defender_acc`` (from the defended test answers), ``clone_acc`` / ``fidelity`` (the clone
selected on validation) and ``*_final`` (the last iterate).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .. import layout
from ..artifacts import read_posteriors, sweep_index
from ..attacks.defense_aware import RESTORED, DefenseAwareConfig, restore, restorers
from ..attacks.knockoff import KnockoffConfig, label_kinds, labelled_for, run_knockoff
from ..io import save_csv, save_json
from ..models import build_model
from ..oracle import Oracle
from ..record_types import DataFreeRecord, KnockoffRecord
from ..seeding import derive_seed, seed_everything
from ..sweeps import strongest
from ..training import attacker_labels, dataset_tensors, predict_probs
from ..victims import read_victim, save_classifier
from .answers import OracleRequest, load_answers, load_defense
from .context import stage, write_record
from .requests import VictimData, VictimRequest


def clone_scores(
    model: nn.Module, test: Dataset, answers: Mapping[str, np.ndarray], device: torch.device
) -> dict:
    """Test accuracy and fidelity (agreement with the undefended victim) of a clone."""
    pred = predict_probs(model, test, device).argmax(-1).numpy()
    return {
        "acc": float((pred == answers["test_labels"]).mean()),
        "fidelity": float((pred == answers["victim_test_pred"]).mean()),
        "pred": pred,
    }


def attack_stream_seed(seed: int, *attack: str) -> int:
    """The seed of an attack's random streams (clone or student initialisation, data order,
    augmentation, generator, probes): the replicate seed and the attack's own names (kind,
    transfer set or attack name), never the victim's. Two victims attacked under one seed, the
    teacher and its MISLEADER ensemble, an fp32 victim and its int8 copy, every defense of a
    sweep, meet the same attacker, so their comparisons are paired (docs/statistics.md)."""
    return derive_seed(seed, *attack)


@dataclass(frozen=True, kw_only=True)
class KnockoffSweep(VictimRequest):
    """The values of one defense's sweep (``params``, canonical texts) on one transfer set, and
    where its clones go (``out_clones``)."""

    transfer: str
    defense: str
    transfer_cfg: Mapping[str, Any]
    defense_cfg: Mapping[str, Any]
    knockoff: Mapping[str, Any]
    params: Sequence[str]
    in_posteriors: str
    out_clones: str

    def __post_init__(self) -> None:
        if not self.params or len(set(self.params)) != len(self.params):
            raise ValueError(f"a KnockoffNets sweep needs distinct values, got {list(self.params)}")

    @property
    def stream_seed(self) -> int:
        """The seed of the clones' streams (:func:`attack_stream_seed`)."""
        return attack_stream_seed(self.seed, "knockoff", self.transfer)


@dataclass(frozen=True, kw_only=True)
class KnockoffRequest(KnockoffSweep):
    """One clone per label kind of ``knockoff.labels`` and value in ``out_clones``
    (``<labels>/<param>.safetensors``, :data:`~msdefense.layout.KNOCKOFF_CLONE`) and one metrics
    file holding the list of their records."""

    out_metrics: str

    def clone_path(self, labels: str, param: str) -> str:
        return str(Path(self.out_clones) / layout.KNOCKOFF_CLONE_FILE.format(labels=labels, param=param))


def train_knockoff(request: KnockoffRequest) -> list[dict[str, Any]]:
    """KnockoffNets clones (:mod:`msdefense.attacks.knockoff`) for the request's label kinds and
    values.

    The data are read once; every clone uses the same clone seed (same initialisation and data
    order), so the clones of a sweep differ only by the defense and the labels they learn from.
    """
    r, cfg = request, request.victim_cfg
    kinds = label_kinds(r.knockoff, r.defense, labelled_for(r.transfer_cfg, cfg["dataset"]))
    cseed = r.stream_seed
    records = []
    with stage(r.device) as ctx:
        answers = read_posteriors(r.in_posteriors, r.params)
        data = VictimData(cfg["dataset"], r.data)
        train = data.transfer(r.transfer_cfg, augment=True)
        test, val = data.test(), data.val()
        Path(r.out_clones).mkdir(parents=True, exist_ok=True)
        trained: dict[str, tuple[Any, float]] = {}  # targets digest -> (clone result, seconds)
        for labels in kinds:
            attack = KnockoffConfig.from_config(r.knockoff, labels)
            (Path(r.out_clones) / labels).mkdir(exist_ok=True)
            params = sweep_for(r, labels)
            indices = [sweep_index(answers, param, r.in_posteriors) for param in params]
            restorers = (
                _restorers(r, attack, params, train=train, data=data, device=ctx.device, seed=cseed)
                if labels == RESTORED
                else [(None, {}) for _ in params]
            )
            for (param, e, result, seconds), (_, fit) in zip(
                _knockoff_clones(
                    r,
                    attack,
                    answers,
                    params,
                    indices,
                    restorers=[restorer for restorer, _ in restorers],
                    trained=trained,
                    train=train,
                    val=val,
                    data=data,
                    device=ctx.device,
                    seed=cseed,
                ),
                restorers,
                strict=True,
            ):
                record = clone_record(
                    r, attack, answers, e, param, result, seconds=seconds, fit=fit, test=test, ctx=ctx
                )
                save_classifier(
                    result.clone, r.clone_path(labels, param), arch=attack.arch, dataset=cfg["dataset"]
                )
                records.append(record)
    save_json(records, r.out_metrics)
    return records


def clone_record(
    r: KnockoffSweep,
    attack: KnockoffConfig,
    answers: Mapping[str, np.ndarray],
    e: int,
    param: str,
    result: Any,
    *,
    seconds: float,
    fit: Mapping[str, float],
    test: Dataset,
    ctx: Any,
    queries: int | None = None,
) -> dict[str, Any]:
    """The metrics record of one clone (sweep index ``e``) that saw ``queries`` answers (default:
    every answer of the query set)."""
    best, final = (
        clone_scores(result.clone, test, answers, ctx.device),
        clone_scores(result.final, test, answers, ctx.device),
    )
    record = KnockoffRecord(
        victim=r.victim,
        transfer=r.transfer,
        defense=r.defense,
        method=r.defense_cfg["method"],
        param=param,
        defender_acc=float(answers["defender_acc"][e]),
        clone_acc=best["acc"],
        fidelity=best["fidelity"],
        agreement_defended=float((best["pred"] == answers["test"][e].argmax(-1)).mean()),
        clone_acc_final=final["acc"],
        fidelity_final=final["fidelity"],
        best_val_acc=result.best_val_acc,
        best_epoch=result.best_epoch,
        l1_distance=float(answers["l1_distance"][e]),
        queries=int(answers["queries"]) if queries is None else queries,
        test_images=len(answers["test_labels"]),
        clone_arch=attack.arch,
        labels=attack.labels,
        epochs=attack.recipe.epochs,  # the cap when the recipe has a patience
        patience=attack.recipe.patience,
        epochs_run=result.epochs_run,
        stop_reason=result.stop_reason,
        val_curve=result.val_curve(),
        seed=r.seed,
        stream_seed=r.stream_seed,
        # wall_seconds / peak memory count from the start of the sweep job; this value alone:
        clone_seconds=round(seconds, 2),
        restorer_l1_defended=fit.get("l1_defended"),
        restorer_l1_restored=fit.get("l1_restored"),
        restorer_steps=fit.get("steps"),
    )
    return ctx.record(**record.fields())


def _restorers(
    r: KnockoffRequest,
    attack: KnockoffConfig,
    params: Sequence[str],
    *,
    train: Dataset,
    data: VictimData,
    device: torch.device,
    seed: int,
) -> list[tuple[Any, dict[str, float]]]:
    """The defense-aware attacker's restorer for every value of ``params``, learned on its shadow
    models (:mod:`msdefense.attacks.defense_aware`); its own seeds, none of them the victim's."""
    aware = DefenseAwareConfig.from_config(r.knockoff["defense_aware"])
    return restorers(
        r.defense_cfg,
        [float(p) for p in params],
        dataset=r.victim_cfg["dataset"],
        images=train,
        plain=data.transfer(r.transfer_cfg, augment=False),
        cfg=aware,
        arch=attack.arch,
        classes=data.spec.num_classes,
        in_channels=data.spec.in_channels,
        device=device,
        seed=derive_seed(seed, "defense-aware"),  # the same shadows for every defense of a seed
    )


def _knockoff_clones(
    r: KnockoffRequest,
    attack: KnockoffConfig,
    answers: Mapping[str, np.ndarray],
    params: Sequence[str],
    indices: Sequence[int],
    *,
    restorers: Sequence[Any],
    trained: dict[str, tuple[Any, float]],
    train: Dataset,
    val: Dataset,
    data: VictimData,
    device: torch.device,
    seed: int,
) -> list[tuple[str, int, Any, float]]:
    """(value, sweep index, clone result, seconds) for every value of ``params``, one clone at a
    time, each starting from the global RNG seeded with ``seed``. Every clone of a job has the same
    seed, data and recipe, so two with the same targets are the same clone: one is trained, the
    other taken from ``trained`` (targets digest → result), which the job's kinds share. So a
    restored clone whose defense the attacker inverts exactly (no restorer) is the soft clone of
    its value, a label-only clone of a defense that keeps every query's top class is the one of
    any other such value, and TopK's k = 1 soft clone is its label-only one."""
    spec = data.spec
    common = {"val": val, "num_classes": spec.num_classes, "in_channels": spec.in_channels, "device": device}
    out = []
    for param, e, restorer in zip(params, indices, restorers, strict=True):
        answered = restore(restorer, torch.from_numpy(answers["transfer"][e]))
        key = targets_digest(attacker_labels(answered, attack.labels))
        if key not in trained:
            seed_everything(seed)
            start = time.perf_counter()
            result = run_knockoff(
                answered,
                train,
                attack,
                seed=seed,
                desc=f"knockoff {r.defense}={param} ({attack.labels} labels)",
                backbone=r.weights,
                **common,
            )
            trained[key] = (result, time.perf_counter() - start)
        out.append((param, e, *trained[key]))
    return out


def targets_digest(targets: torch.Tensor) -> str:
    """A digest of a clone's training targets (their dtype, shape and bytes)."""
    t = targets.detach().cpu().contiguous()
    return hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode() + t.numpy().tobytes()).hexdigest()


def sweep_for(r: KnockoffSweep, labels: str | None = None) -> list[str]:
    """The values of ``r``'s sweep that the ``labels`` clones (``None``: the budget clones) are
    trained at: every value, or the strongest alone (:func:`msdefense.sweeps.strongest`) where
    ``knockoff.strongest_only`` names the kind (``restored``, ``budgets``)."""
    kind = "budgets" if labels is None else labels
    if kind in r.knockoff.get("strongest_only", ()):
        return [strongest(r.defense_cfg["method"], r.params)]
    return list(r.params)


@dataclass(frozen=True, kw_only=True)
class DataFreeRequest(OracleRequest):
    attack: str
    defense: str
    param: str
    attack_cfg: Mapping[str, Any]
    student: str
    in_posteriors: str
    out_metrics: str
    out_model: str
    out_history: str


def run_datafree(request: DataFreeRequest) -> dict[str, Any]:
    """DFME or MAZE (per the attack's preset) against the victim behind one defense at one value.

    Every query, zeroth-order probes included, goes through an :class:`~msdefense.oracle.Oracle`
    whose budget is the attack's ``query_budget``. The student is selected on the validation
    split; both the selected and the final student are evaluated on the test set. All defenses of
    a (victim, attack) pair use the same attack seed, so the runs differ only by the defense.
    ``defender_acc`` comes from the defended test answers (the same numbers as the KnockoffNets
    table).
    """
    from ..attacks import load_best
    from ..attacks import run_datafree as attack_loop
    from ..attacks.datafree_config import from_config as datafree_from_config

    r, cfg = request, request.victim_cfg
    with stage(r.device) as ctx:
        answers, e = load_answers(r.in_posteriors, r.param)
        model, _ = read_victim(r.in_victim, ctx.device, pattern=layout.VICTIM_MODEL)
        data = VictimData(cfg["dataset"], r.data)
        defense = load_defense(
            r.defense_cfg, dataset=cfg["dataset"], aux_paths=r.in_aux, seed=r.seed, device=ctx.device
        )
        aseed = attack_stream_seed(r.seed, "datafree", r.attack)
        attack = datafree_from_config(r.attack_cfg, aseed)
        oracle = Oracle(model, defense, [float(r.param)], budget=attack.query_budget)
        val_x, val_y = dataset_tensors(data.val())
        test = data.test()
        seed_everything(aseed)  # the student's initialisation depends only on the attack seed
        student = build_model(r.student, data.spec.num_classes, data.spec.in_channels)
        result = attack_loop(
            oracle,
            student,
            attack,
            image_shape=data.image_shape(),
            device=ctx.device,
            val_data=(val_x, val_y),
            test_data=dataset_tensors(test),  # the budget curves' checkpoints only
        )
        selected = load_best(result.student, result)
        final = clone_scores(result.student, test, answers, ctx.device)
        best = clone_scores(selected, test, answers, ctx.device)
        save_csv(result.history, r.out_history)
        save_classifier(selected, r.out_model, arch=r.student, dataset=cfg["dataset"])
        metrics = DataFreeRecord(
            attack=r.attack,
            victim=r.victim,
            defense=r.defense,
            method=r.defense_cfg["method"],
            param=r.param,
            preset=r.attack_cfg["preset"],
            oracle_view=attack.oracle_view,
            defender_acc=float(answers["defender_acc"][e]),
            clone_acc=best["acc"],
            fidelity=best["fidelity"],
            clone_acc_final=final["acc"],
            fidelity_final=final["fidelity"],
            best_val_acc=result.best_val_acc,
            best_iteration=result.best_iteration,
            iterations=result.iterations,
            queries=result.queries_used,
            test_images=len(answers["test_labels"]),
            oracle_queries=oracle.queries_used,
            query_budget=attack.query_budget,
            cost_per_iteration=result.cost_per_iteration,
            student_arch=r.student,
            config={k: list(v) if isinstance(v, tuple) else v for k, v in result.config.items()},
            seed=r.seed,
            stream_seed=aseed,
        )
        record = ctx.record(**metrics.fields())
    return write_record(record, r.out_metrics)
