"""Stage of ``answer_queries``: the defended posteriors of a whole sweep, and how they are read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import layout
from ..artifacts import read_posteriors, sweep_index
from ..config import format_param
from ..defenses import Defense, build_defense
from ..io import save_arrays
from ..oracle import Oracle
from ..seeding import derive_seed
from ..training import dataset_labels, make_loader
from ..victims import read_classifier, read_victim
from .context import stage
from .requests import VictimData, VictimRequest


def load_defense(
    defense_cfg: Mapping[str, Any],
    *,
    dataset: str,
    aux_paths: Mapping[str, str],
    seed: int,
    device: torch.device,
) -> Defense:
    """The defense of a config entry with its auxiliary models loaded from ``aux_paths``; its
    randomness (Random) is seeded from the experiment ``seed``."""
    aux = {name: read_classifier(path, device) for name, path in aux_paths.items()}
    return build_defense(defense_cfg, dataset, aux, derive_seed(seed, "defense"))


def load_answers(posteriors_path: str, param: str) -> tuple[dict[str, np.ndarray], int]:
    """The arrays :func:`answer_queries` wrote (checked: :func:`~msdefense.artifacts.read_posteriors`)
    and the sweep index of ``param``."""
    answers = read_posteriors(posteriors_path, [param])
    return answers, sweep_index(answers, param, posteriors_path)


@dataclass(frozen=True, kw_only=True)
class OracleRequest(VictimRequest):
    """A stage that puts a victim behind a defense: the defense's config entry (with the sweep
    put in front of this victim), the victim's weights and the defense's auxiliary models."""

    defense_cfg: Mapping[str, Any]
    in_victim: str
    in_aux: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AnswerRequest(OracleRequest):
    transfer_cfg: Mapping[str, Any]
    batch_size: int
    out_posteriors: str


def _answer_all(
    oracle: Oracle, dataset: Dataset, *, batch_size: int, num_classes: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Clean ``[N, K]`` and defended ``[E, N, K]`` posteriors of every image, one victim pass per batch."""
    clean = np.empty((len(dataset), num_classes), np.float32)  # type: ignore[arg-type]
    defended = np.empty((len(oracle.params), len(dataset), num_classes), np.float32)  # type: ignore[arg-type]
    i = 0
    for x, _ in make_loader(dataset, batch_size=batch_size, device=device, shuffle=False):
        probs, answers = oracle.answer_sweep(x.to(device, non_blocking=True), with_clean=True)
        clean[i : i + len(x)] = probs.cpu().numpy()
        defended[:, i : i + len(x)] = answers.cpu().numpy()
        i += len(x)
    return clean, defended


def answer_queries(request: AnswerRequest) -> dict[str, Any]:
    """Defended posteriors of the whole sweep on the transfer set and on the victim's test set.

    Each batch is one victim forward pass; the defense turns it into every sweep value at once.
    The transfer set goes through an :class:`~msdefense.oracle.Oracle` whose budget is its size.
    """
    r, cfg = request, request.victim_cfg
    with stage(r.device, derive_seed(r.seed, "answer", cfg["dataset"], r.transfer_cfg["source"])) as ctx:
        model, _ = read_victim(r.in_victim, ctx.device, pattern=layout.VICTIM_MODEL)
        data = VictimData(cfg["dataset"], r.data)
        params = [float(p) for p in r.defense_cfg["params"]]
        defense = load_defense(
            r.defense_cfg, dataset=cfg["dataset"], aux_paths=r.in_aux, seed=r.seed, device=ctx.device
        )
        queries = data.transfer(r.transfer_cfg, augment=False)
        test = data.test()
        k = data.spec.num_classes
        run = {"batch_size": r.batch_size, "num_classes": k, "device": ctx.device}
        clean_q, defended_q = _answer_all(Oracle(model, defense, params, budget=len(queries)), queries, **run)
        clean_t, defended_t = _answer_all(Oracle(model, defense, params, budget=None), test, **run)
        labels = dataset_labels(test).numpy()
        l1 = np.abs(defended_q - clean_q[None]).sum(-1).mean(-1)
        defender_acc = (defended_t.argmax(-1) == labels[None]).mean(-1)
        save_arrays(
            r.out_posteriors,
            {
                "params": np.array(params, np.float64),
                "param_texts": np.array([format_param(p) for p in params]),
                "transfer": defended_q,
                "test": defended_t,
                "test_labels": labels,
                "victim_test_pred": clean_t.argmax(-1),
                "l1_distance": l1,
                "defender_acc": defender_acc,
                "queries": np.array(len(queries)),
            },
        )
        return ctx.record(
            defender_acc=defender_acc.tolist(), l1_distance=l1.tolist(), queries=len(queries), seed=r.seed
        )
