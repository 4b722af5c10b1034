"""One function per workflow rule: read inputs, run the package's methods, write artifacts.

The scripts under ``workflow/scripts/`` only unpack ``snakemake`` objects and call these, so
each job can also be run and tested without Snakemake.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from torch import nn
from torch.utils.data import DataLoader

from . import __version__
from .config import format_param
from .data import get_dataset_spec, load_transfer_set, victim_training_set
from .defenses import build_defense
from .io import load_arrays, load_json, save_arrays, save_json, save_model
from .models import build_model
from .oracle import Oracle
from .seeding import derive_seed, pick_device, seed_everything
from .training import SGDRecipe, dataset_labels, distill, predict_probs, train_classifier


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and peak CUDA allocation, when used), in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return round(rss + cuda, 1)


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, str]]:
    """Rebuild a classifier saved by :func:`save_classifier` from its metadata and weights."""
    with safe_open(str(path), framework="pt", device=str(device)) as fh:
        meta = fh.metadata() or {}
        state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    for key in ("arch", "num_classes", "in_channels"):
        if key not in meta:
            raise ValueError(
                f"{path}: weights lack the metadata key {key!r}; re-create them with this package"
            )
    model = build_model(meta["arch"], int(meta["num_classes"]), int(meta["in_channels"]))
    model.load_state_dict(state)
    return model.to(device).eval(), meta


def save_classifier(model: nn.Module, path: str | Path, arch: str, dataset: str) -> None:
    spec = get_dataset_spec(dataset)
    meta = {
        "arch": arch,
        "dataset": dataset,
        "num_classes": str(spec.num_classes),
        "in_channels": str(spec.in_channels),
        "msdefense_version": __version__,
    }
    save_model(model, path, meta)


def train_victim(
    name: str,
    victim: Mapping[str, Any],
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_model: str | Path,
    out_metrics: str | Path,
    out_history: str | Path,
) -> dict[str, Any]:
    """Train the victim ``name`` (reference §5) and write weights, metrics and history."""
    start = time.perf_counter()
    dev = pick_device(device)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    vseed = derive_seed(seed, "victim", name)
    seed_everything(vseed)
    train = victim_training_set(spec, root, data["attacker_holdout"], seed, augment=True)
    evals = {s: spec.loader(root, s, False, False) for s in ("val", "test") if s in spec.splits}
    model = build_model(victim["arch"], spec.num_classes, spec.in_channels)
    recipe = SGDRecipe.from_config(victim["train"])
    history = train_classifier(model, train, evals, recipe, dev, vseed, desc=f"victim {name}")
    pd.DataFrame(history).to_csv(out_history, index=False)
    save_classifier(model, out_model, victim["arch"], victim["dataset"])
    metrics = {
        "victim": name,
        "dataset": victim["dataset"],
        "arch": victim["arch"],
        "test_acc": history[-1]["test_acc"],
        "val_acc": history[-1].get("val_acc"),
        "train_size": len(train),
        "seed": vseed,
        "device": str(dev),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "peak_memory_mb": peak_memory_mb(),
    }
    save_json(metrics, out_metrics)
    return metrics


def answer_queries(
    victim_path: str | Path,
    victim: Mapping[str, Any],
    transfer: Mapping[str, Any],
    defense: Mapping[str, Any],
    data: Mapping[str, Any],
    seed: int,
    device: str,
    batch_size: int,
    out_npz: str | Path,
) -> dict[str, Any]:
    """Defended posteriors for the whole sweep on the transfer set and on the victim's test set.

    Each batch is one victim forward pass; the defense turns it into every sweep value at once.
    The transfer set goes through an :class:`Oracle` whose budget is the transfer-set size.
    """
    start = time.perf_counter()
    dev = pick_device(device)
    seed_everything(derive_seed(seed, "answer", victim["dataset"], transfer["source"]))
    model, _ = load_classifier(victim_path, dev)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    params = [float(p) for p in defense["params"]]
    defense_impl = build_defense(defense, victim["dataset"])
    queries = load_transfer_set(
        transfer, victim["dataset"], root, data["attacker_holdout"], seed, augment=False
    )
    test = spec.loader(root, "test", False, False)

    def run(dataset, budget: int | None) -> tuple[np.ndarray, np.ndarray]:
        oracle = Oracle(model, defense_impl, params, budget=budget)
        clean = np.empty((len(dataset), spec.num_classes), np.float32)
        defended = np.empty((len(params), len(dataset), spec.num_classes), np.float32)
        i = 0
        for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            probs, answers = oracle.answer_sweep(x.to(dev), with_clean=True)
            clean[i : i + len(x)] = probs.cpu().numpy()
            defended[:, i : i + len(x)] = answers.cpu().numpy()
            i += len(x)
        return clean, defended

    clean_q, defended_q = run(queries, budget=len(queries))
    clean_t, defended_t = run(test, budget=None)
    labels = dataset_labels(test).numpy()
    l1 = np.abs(defended_q - clean_q[None]).sum(-1).mean(-1)
    defender_acc = (defended_t.argmax(-1) == labels[None]).mean(-1)
    save_arrays(
        out_npz,
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
    return {"seconds": time.perf_counter() - start, "defender_acc": defender_acc.tolist(), "l1": l1.tolist()}


def train_knockoff(
    posteriors_path: str | Path,
    param: str,
    names: Mapping[str, str],
    victim: Mapping[str, Any],
    transfer: Mapping[str, Any],
    defense: Mapping[str, Any],
    knockoff: Mapping[str, Any],
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_metrics: str | Path,
    out_model: str | Path,
) -> dict[str, Any]:
    """KnockoffNets soft-label clone for one sweep value (reference §9.1).

    The clone trains on augmented views of the transfer images paired with the defended
    answers to the un-augmented images. Every sweep value of a (victim, transfer set) pair uses
    the same clone seed (same initialisation and data order), so the curves differ only by
    the defense.
    """
    start = time.perf_counter()
    dev = pick_device(device)
    answers = load_arrays(posteriors_path)
    texts = answers["param_texts"].tolist()
    if param not in texts:
        raise KeyError(f"{posteriors_path} has no answers for parameter {param!r}; it has {texts}")
    e = texts.index(param)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    cseed = derive_seed(seed, "knockoff", names["victim"], names["transfer"])
    seed_everything(cseed)
    train = load_transfer_set(transfer, victim["dataset"], root, data["attacker_holdout"], seed, augment=True)
    test = spec.loader(root, "test", False, False)
    targets = torch.from_numpy(answers["transfer"][e])
    clone = build_model(knockoff["arch"], spec.num_classes, spec.in_channels)
    recipe = SGDRecipe.from_config(knockoff)
    desc = f"knockoff {names['defense']}={param}"
    distill(clone, train, targets, recipe, dev, cseed, desc=desc)
    clone_pred = predict_probs(clone, test, dev).argmax(-1).numpy()
    labels = answers["test_labels"]
    save_classifier(clone, out_model, knockoff["arch"], victim["dataset"])
    metrics = {
        **names,
        "method": defense["method"],
        "param": param,
        "defender_acc": float(answers["defender_acc"][e]),
        "clone_acc": float((clone_pred == labels).mean()),
        "fidelity": float((clone_pred == answers["victim_test_pred"]).mean()),
        "agreement_defended": float((clone_pred == answers["test"][e].argmax(-1)).mean()),
        "l1_distance": float(answers["l1_distance"][e]),
        "queries": int(answers["queries"]),
        "clone_arch": knockoff["arch"],
        "epochs": recipe.epochs,
        "seed": cseed,
        "device": str(dev),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "peak_memory_mb": peak_memory_mb(),
    }
    save_json(metrics, out_metrics)
    return metrics


def collect_metrics(paths: list[str | Path]) -> pd.DataFrame:
    return pd.DataFrame([load_json(p) for p in paths])
