"""One function per workflow rule: read inputs, run the package's methods, write artifacts.

The scripts under ``workflow/scripts/`` only unpack ``snakemake`` objects and call these, so
each job can also be run and tested without Snakemake.
"""

from __future__ import annotations

import copy
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
from .data import get_dataset_spec, load_transfer_set, validation_set, victim_training_set
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


def victim_kind(path: str | Path) -> str:
    """``classifier``, ``ensemble`` (MISLEADER) or ``quantized``, from the weights' metadata."""
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        meta = fh.metadata() or {}
    if "quant_mode" in meta:
        return "quantized"
    return meta.get("kind", "classifier")


def load_victim(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, str]]:
    """Any victim the workflow writes: a trained classifier, a MISLEADER ensemble (its forward
    returns log of the mean member softmax, so the oracle's softmax gives the soft vote) or an
    int8 model (CPU only: it runs on the CPU whatever ``device`` is and returns its logits on the
    input's device)."""
    kind = victim_kind(path)
    if kind == "ensemble":
        from .misleader import load_ensemble

        return load_ensemble(path, device)
    if kind == "quantized":
        from .quantization import load_quantized

        return load_quantized(path)
    return load_classifier(path, device)


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
    train = victim_training_set(
        spec, root, data["attacker_holdout"], seed, augment=True, val_fraction=data["validation_fraction"]
    )
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
    model, _ = load_victim(victim_path, dev)
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


class BestOnValidation:
    """Per-epoch evaluation callback of :func:`~msdefense.training.distill` that keeps the weights
    with the best validation accuracy (issue 4 item 7: clone selection never on the test set)."""

    def __init__(self, val: Any, device: torch.device) -> None:
        self.val, self.device = val, device
        self.labels = dataset_labels(val)
        self.best_acc, self.best_step, self.calls = -1.0, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def __call__(self, model: nn.Module) -> dict[str, float]:
        self.calls += 1
        acc = float((predict_probs(model, self.val, self.device).argmax(-1) == self.labels).double().mean())
        if acc > self.best_acc:
            self.best_acc, self.best_step = acc, self.calls
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return {"val_acc": acc}

    def best_model(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with the selected weights (``model`` itself if nothing was evaluated)."""
        if self.best_state is None:
            return model
        best = copy.deepcopy(model)
        best.load_state_dict(self.best_state)
        return best.eval()


def load_answers(posteriors_path: str | Path, param: str) -> tuple[dict[str, np.ndarray], int]:
    """The arrays ``answer_queries`` wrote and the sweep index of ``param`` (its canonical text)."""
    answers = load_arrays(posteriors_path)
    texts = answers["param_texts"].tolist()
    if param not in texts:
        raise KeyError(f"{posteriors_path} has no answers for parameter {param!r}; it has {texts}")
    return answers, texts.index(param)


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

    The clone is selected on the victim dataset's validation split (best epoch); the metrics
    give both the selected clone (``clone_acc``, ``fidelity``) and the final one (``*_final``).

    The clone trains on augmented views of the transfer images paired with the defended
    answers to the un-augmented images. Every sweep value of a (victim, transfer set) pair uses
    the same clone seed (same initialisation and data order), so the curves differ only by
    the defense.
    """
    start = time.perf_counter()
    dev = pick_device(device)
    answers, e = load_answers(posteriors_path, param)
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
    val = validation_set(spec, root, data["attacker_holdout"], seed, data["validation_fraction"])
    selector = BestOnValidation(val, dev)
    distill(clone, train, targets, recipe, dev, cseed, evaluate=selector, desc=desc)
    final_pred = predict_probs(clone, test, dev).argmax(-1).numpy()
    best = selector.best_model(clone)
    clone_pred = predict_probs(best, test, dev).argmax(-1).numpy()
    labels = answers["test_labels"]
    save_classifier(best, out_model, knockoff["arch"], victim["dataset"])
    metrics = {
        **names,
        "method": defense["method"],
        "param": param,
        "defender_acc": float(answers["defender_acc"][e]),
        "clone_acc": float((clone_pred == labels).mean()),
        "fidelity": float((clone_pred == answers["victim_test_pred"]).mean()),
        "agreement_defended": float((clone_pred == answers["test"][e].argmax(-1)).mean()),
        "clone_acc_final": float((final_pred == labels).mean()),
        "fidelity_final": float((final_pred == answers["victim_test_pred"]).mean()),
        "best_val_acc": selector.best_acc,
        "best_epoch": selector.best_step,
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
    train = victim_training_set(
        spec, root, data["attacker_holdout"], seed, augment=True, val_fraction=data["validation_fraction"]
    )
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
    model_v, _ = load_victim(victim_path, dev)
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
        model, meta = load_victim(victim_path, dev)
        arch, dataset = meta["arch"], meta["dataset"]  # arch: the defenses' surrogate architecture
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


def datafree_config(attack: Mapping[str, Any], seed: int) -> Any:
    """The :class:`~msdefense.attacks.DataFreeConfig` of a config ``datafree.attacks.<name>`` entry:
    its ``preset`` with every other key as an override (``milestones`` / ``input_*`` lists become tuples)."""
    from .attacks import PRESETS

    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in attack.items() if k != "preset"}
    return PRESETS[attack["preset"]](**overrides, seed=seed)


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for x, y in DataLoader(data, batch_size=512, shuffle=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys)


def run_datafree_attack(
    victim_path: str | Path,
    posteriors_path: str | Path,
    names: Mapping[str, str],
    param: str,
    victim: Mapping[str, Any],
    defense: Mapping[str, Any],
    attack: Mapping[str, Any],
    student_arch: str,
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_metrics: str | Path,
    out_model: str | Path,
    out_history: str | Path,
    aux_paths: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """DFME or MAZE (per the attack's preset) against the victim behind one defense at one parameter.

    Every query, zeroth-order probes included, goes through an :class:`Oracle` whose budget is
    the attack's ``query_budget``. The student is selected on the victim dataset's validation
    split (never the test set); both the best-on-validation and the final student are evaluated
    on the test set. All defenses of a (victim, attack) pair use the same attack seed, so the
    runs differ only by the defense. ``defender_acc`` is read from the defended test answers of
    ``posteriors_path`` (the same numbers as the KnockoffNets table).
    """
    from .attacks import load_best, run_datafree

    start = time.perf_counter()
    dev = pick_device(device)
    answers, e = load_answers(posteriors_path, param)
    model, _ = load_victim(victim_path, dev)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    aux = {name: load_classifier(path, dev)[0] for name, path in (aux_paths or {}).items()}
    defense_impl = build_defense(defense, victim["dataset"], aux, derive_seed(seed, "defense"))
    aseed = derive_seed(seed, "datafree", names["attack"], names["victim"])
    cfg = datafree_config(attack, aseed)
    oracle = Oracle(model, defense_impl, [float(param)], budget=cfg.query_budget)
    val = validation_set(spec, root, data["attacker_holdout"], seed, data["validation_fraction"])
    val_x, val_y = _tensors(val)
    test = spec.loader(root, "test", False, False)
    seed_everything(aseed)  # the student's initialisation depends only on the attack seed
    student = build_model(student_arch, spec.num_classes, spec.in_channels)
    result = run_datafree(
        oracle, student, cfg, (spec.in_channels, spec.image_size, spec.image_size), dev, (val_x, val_y)
    )
    best = load_best(result.student, result)
    labels = answers["test_labels"]
    victim_pred = answers["victim_test_pred"]
    pred_final = predict_probs(result.student, test, dev).argmax(-1).numpy()
    pred_best = predict_probs(best, test, dev).argmax(-1).numpy()
    pd.DataFrame(result.history).to_csv(out_history, index=False)
    save_classifier(best, out_model, student_arch, victim["dataset"])
    metrics = {
        **names,
        "method": defense["method"],
        "param": param,
        "preset": attack["preset"],
        "defender_acc": float(answers["defender_acc"][e]),
        "clone_acc": float((pred_best == labels).mean()),
        "fidelity": float((pred_best == victim_pred).mean()),
        "clone_acc_final": float((pred_final == labels).mean()),
        "fidelity_final": float((pred_final == victim_pred).mean()),
        "best_val_acc": result.best_val_acc,
        "best_iteration": result.best_iteration,
        "iterations": result.iterations,
        "queries": result.queries_used,
        "oracle_queries": oracle.queries_used,
        "query_budget": cfg.query_budget,
        "cost_per_iteration": result.cost_per_iteration,
        "student_arch": student_arch,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in result.config.items()},
        "seed": aseed,
        "device": str(dev),
    }
    # no wall time in metrics.json: the same seed gives the same file on CPU (Snakemake's
    # benchmark file has the timings); the log gets them
    print(f"run_datafree_attack: {time.perf_counter() - start:.1f} s, peak memory {peak_memory_mb()} MB")
    save_json(metrics, out_metrics)
    return metrics


def quantize_victim(
    source_path: str | Path,
    name: str,
    victim: Mapping[str, Any],
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_model: str | Path,
    out_metrics: str | Path,
) -> dict[str, Any]:
    """An int8 copy of a trained fp32 victim (reference §11): PTQ calibrated on
    ``calibration_images`` un-augmented training images, or QAT fine-tuned for ``qat_epochs`` on
    the (augmented) training data, with the FX graph-mode engine ``backend`` (x86 = server,
    qnnpack = edge). Writes the int8 weights + recipe (no pickle) and accuracy and sizes."""
    from .quantization import QuantRecipe, model_size_mb, quantize_ptq, quantize_qat, save_quantized

    start = time.perf_counter()
    dev = pick_device(device)
    qcfg = victim["quantize"]
    recipe = QuantRecipe.from_config(qcfg)
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    qseed = derive_seed(seed, "quantize", name)
    seed_everything(qseed)
    fp32, meta = load_classifier(source_path, "cpu")
    example = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size)
    val_fraction = data["validation_fraction"]
    info: dict[str, Any] = {}
    if recipe.mode == "ptq":
        plain = victim_training_set(spec, root, data["attacker_holdout"], seed, False, val_fraction)
        order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(qseed))
        calib = torch.utils.data.Subset(plain, order[: recipe.calibration_images].tolist())
        batches = (x for x, _ in DataLoader(calib, batch_size=64, shuffle=False))
        qmodel = quantize_ptq(fp32, recipe.backend, batches, example)
    else:
        train = victim_training_set(spec, root, data["attacker_holdout"], seed, True, val_fraction)
        qmodel, info = quantize_qat(fp32, recipe.backend, train, recipe, qseed, example, dev)
    test = spec.loader(root, "test", False, False)
    labels = dataset_labels(test)
    q_pred = predict_probs(qmodel, test, torch.device("cpu")).argmax(-1)
    f_pred = predict_probs(fp32, test, torch.device("cpu")).argmax(-1)
    save_quantized(
        qmodel,
        out_model,
        {
            "arch": meta["arch"],
            "dataset": victim["dataset"],
            "num_classes": str(spec.num_classes),
            "in_channels": str(spec.in_channels),
            "source_victim": qcfg["source"],
            "msdefense_version": __version__,
            **recipe.to_metadata(),
        },
    )
    metrics = {
        "victim": name,
        "dataset": victim["dataset"],
        "arch": meta["arch"],
        "source": qcfg["source"],
        "precision": "int8",
        "mode": recipe.mode,
        "backend": recipe.backend,
        "test_acc": float((q_pred == labels).double().mean()),
        "source_test_acc": float((f_pred == labels).double().mean()),
        "agreement_with_source": float((q_pred == f_pred).double().mean()),
        "size_mb": model_size_mb(qmodel),
        "source_size_mb": model_size_mb(fp32),
        "qat_weight_max_abs_change": info.get("weight_max_abs_change"),
        "seed": qseed,
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    save_json(metrics, out_metrics)
    return metrics


def train_misleader_member(
    teacher_path: str | Path,
    name: str,
    index: int,
    victim: Mapping[str, Any],
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_model: str | Path,
    out_metrics: str | Path,
    out_history: str | Path,
) -> dict[str, Any]:
    """Member ``index`` of the MISLEADER ensemble ``name`` (ref B §1.3): distilled from the
    teacher victim while pushed away from an inner attacker, selected on the validation split."""
    from .misleader import MemberRecipe, MemberSpec, train_member

    start = time.perf_counter()
    dev = pick_device(device)
    cfg = victim["misleader"]
    member_spec = MemberSpec.from_config(cfg["members"][index])
    recipe = MemberRecipe.from_config(cfg["train"])
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    teacher, _ = load_classifier(teacher_path, dev)
    train = victim_training_set(spec, root, data["attacker_holdout"], seed, True, data["validation_fraction"])
    val = validation_set(spec, root, data["attacker_holdout"], seed, data["validation_fraction"])
    mseed = derive_seed(seed, "misleader", name, str(index))
    member, history, info = train_member(
        teacher, member_spec, recipe, train, val, spec.num_classes, spec.in_channels, dev, mseed
    )
    pd.DataFrame(history).to_csv(out_history, index=False)
    save_classifier(member, out_model, member_spec.arch, victim["dataset"])
    test = spec.loader(root, "test", False, False)
    test_acc = float((predict_probs(member, test, dev).argmax(-1) == dataset_labels(test)).double().mean())
    metrics = {
        "victim": name,
        "member": index,
        "arch": member_spec.arch,
        "lam": member_spec.lam,
        "T": member_spec.temperature,
        "alpha": member_spec.alpha,
        "test_acc": test_acc,
        "best_val_acc": info.get("best_val_acc"),
        "best_epoch": info.get("best_epoch"),
        "seed": mseed,
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    save_json(metrics, out_metrics)
    return metrics


def build_ensemble(
    member_paths: list[str],
    name: str,
    victim: Mapping[str, Any],
    teacher_metrics_path: str | Path,
    data: Mapping[str, Any],
    seed: int,
    device: str,
    out_model: str | Path,
    out_metrics: str | Path,
) -> dict[str, Any]:
    """The MISLEADER victim (ref B §1.5): soft voting over the members' softmax outputs."""
    from .io import load_json
    from .misleader import Ensemble, save_ensemble

    dev = pick_device(device)
    members = [load_classifier(p, dev)[0] for p in member_paths]
    archs = [m["arch"] for m in victim["misleader"]["members"]]
    ensemble = Ensemble(members).eval()
    spec = get_dataset_spec(victim["dataset"])
    root = Path(data["root"])
    test = spec.loader(root, "test", False, False)
    labels = dataset_labels(test)
    member_acc = [float((predict_probs(m, test, dev).argmax(-1) == labels).double().mean()) for m in members]
    acc = float((predict_probs(ensemble, test, dev).argmax(-1) == labels).double().mean())
    teacher = load_json(teacher_metrics_path)
    arch = victim.get("arch", archs[0])
    save_ensemble(
        ensemble,
        out_model,
        archs,
        victim["dataset"],
        spec.num_classes,
        spec.in_channels,
        {"arch": arch, "teacher": victim["misleader"]["teacher"], "msdefense_version": __version__},
    )
    metrics = {
        "victim": name,
        "dataset": victim["dataset"],
        "arch": arch,
        "kind": "misleader",
        "members": archs,
        "member_test_acc": member_acc,
        "test_acc": acc,
        "teacher": victim["misleader"]["teacher"],
        "teacher_test_acc": teacher["test_acc"],
        "seed": seed,
    }
    save_json(metrics, out_metrics)
    return metrics
