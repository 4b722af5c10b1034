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
from .io import load_arrays, save_arrays, save_json, save_model
from .models import build_model
from .oracle import Oracle
from .seeding import derive_seed, pick_device, seed_everything
from .training import SGDRecipe, attacker_labels, dataset_labels, distill, predict_probs, train_classifier


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
    aux_paths: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Defended posteriors for the whole sweep on the transfer set and on the victim's test set.

    Each batch is one victim forward pass; the defense turns it into every sweep value at once.
    The transfer set goes through an :class:`Oracle` whose budget is the transfer-set size.
    ``aux_paths`` maps the defense's auxiliary model names (surrogates, misinformation model)
    to their weights.
    """
    start = time.perf_counter()
    dev = pick_device(device)
    seed_everything(derive_seed(seed, "answer", victim["dataset"], transfer["source"]))
    model, _ = load_classifier(victim_path, dev)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    params = [float(p) for p in defense["params"]]
    aux = {name: load_classifier(path, dev)[0] for name, path in (aux_paths or {}).items()}
    defense_impl = build_defense(defense, victim["dataset"], aux, derive_seed(seed, "defense"))
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
    targets = attacker_labels(torch.from_numpy(answers["transfer"][e]), knockoff.get("labels", "soft"))
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
        "labels": knockoff.get("labels", "soft"),
        "epochs": recipe.epochs,
        "seed": cseed,
        "device": str(dev),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "peak_memory_mb": peak_memory_mb(),
    }
    save_json(metrics, out_metrics)
    return metrics


def train_misinformation(
    name: str,
    victim: Mapping[str, Any],
    recipe_cfg: Mapping[str, Any],
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_model: str | Path,
    out_metrics: str | Path,
) -> dict[str, Any]:
    """The misinformation model of AdaptiveMisinformation (reference §5.1): the victim's
    architecture trained on the victim's training data to put *low* probability on the true class."""
    from .defenses.adaptive_misinformation import misinformation_loss

    start = time.perf_counter()
    dev = pick_device(device)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    mseed = derive_seed(seed, "misinformation", name)
    seed_everything(mseed)
    train = victim_training_set(spec, root, data["attacker_holdout"], seed, augment=True)
    test = spec.loader(root, "test", False, False)
    model = build_model(victim["arch"], spec.num_classes, spec.in_channels)
    recipe = SGDRecipe.from_config(recipe_cfg)
    history = train_classifier(
        model,
        train,
        {"test": test},
        recipe,
        dev,
        mseed,
        desc=f"misinformation {name}",
        loss_fn=misinformation_loss,
    )
    save_classifier(model, out_model, victim["arch"], victim["dataset"])
    metrics = {
        "victim": name,
        "test_acc": history[-1]["test_acc"],
        "epochs": recipe.epochs,
        "seed": mseed,
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    save_json(metrics, out_metrics)
    return metrics


def train_surrogate(
    victim_path: str | Path,
    names: Mapping[str, str],
    victim: Mapping[str, Any],
    transfer: Mapping[str, Any],
    recipe_cfg: Mapping[str, Any],
    stop_after: int,
    data: Mapping[str, Any],
    seed: int,
    device: str,
    batch_size: int,
    out_model: str | Path,
    out_metrics: str | Path,
) -> dict[str, Any]:
    """A defender surrogate for GRAD / MAD (reference §6): the victim's architecture distilled on
    the transfer set from the victim's clean posteriors, stopped after ``stop_after`` epochs of
    the ``recipe_cfg['epochs']``-long cosine schedule (0 = untrained)."""
    start = time.perf_counter()
    dev = pick_device(device)
    model_v, _ = load_classifier(victim_path, dev)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    sseed = derive_seed(seed, "surrogate", names["victim"], names["transfer"])
    seed_everything(sseed)
    plain = load_transfer_set(
        transfer, victim["dataset"], root, data["attacker_holdout"], seed, augment=False
    )
    targets = predict_probs(model_v, plain, dev, batch_size)
    train = load_transfer_set(transfer, victim["dataset"], root, data["attacker_holdout"], seed, augment=True)
    model = build_model(victim["arch"], spec.num_classes, spec.in_channels)
    recipe = SGDRecipe.from_config(recipe_cfg)
    desc = f"surrogate {names['victim']}/{names['transfer']} e{stop_after}"
    history = distill(model, train, targets, recipe, dev, sseed, desc=desc, stop_after=stop_after)
    save_classifier(model, out_model, victim["arch"], victim["dataset"])
    test = spec.loader(root, "test", False, False)
    metrics = {
        **names,
        "stop_after_epochs": stop_after,
        "schedule_epochs": recipe.epochs,
        "test_acc": float(
            (predict_probs(model, test, dev).argmax(-1) == dataset_labels(test)).double().mean()
        ),
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "seed": sseed,
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    save_json(metrics, out_metrics)
    return metrics


def measure_latency(
    victim_name: str,
    victim_path: str | Path | None,
    reference: Mapping[str, Any] | None,
    defenses: Mapping[str, Mapping[str, Any]],
    latency: Mapping[str, Any],
    seed: int,
    device: str,
    out_json: str | Path,
) -> list[dict[str, Any]]:
    """Latency rows of every defense for one victim: a trained victim (``victim_path``) or a
    reference architecture with random weights (``reference``: arch, num_classes, in_channels,
    image_size)."""
    from .latency import measure_defenses

    dev = pick_device(device)
    seed_everything(derive_seed(seed, "latency", victim_name))
    if victim_path is not None:
        model, meta = load_classifier(victim_path, dev)
        arch, dataset = meta["arch"], meta["dataset"]
        spec = get_dataset_spec(dataset)
        num_classes, in_channels, image_size = spec.num_classes, spec.in_channels, spec.image_size
    else:
        if reference is None:
            raise ValueError("measure_latency needs a trained victim or a reference architecture")
        arch, dataset = reference["arch"], reference.get("dataset", "reference")
        num_classes, in_channels = int(reference["num_classes"]), int(reference["in_channels"])
        image_size = int(reference["image_size"])
        model = build_model(arch, num_classes, in_channels)
    rows = measure_defenses(
        model,
        arch,
        num_classes,
        in_channels,
        image_size,
        dataset,
        defenses,
        list(latency["batch_sizes"]),
        int(latency["warmup"]),
        int(latency["repeats"]),
        dev,
        derive_seed(seed, "latency-input"),
    )
    for row in rows:
        row.update(victim=victim_name, arch=arch, device=str(dev), threads=torch.get_num_threads())
    save_json(rows, out_json)
    return rows
