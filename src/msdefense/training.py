"""Training loops: supervised victims and soft-label distillation (KnockoffNets clones, defender
surrogates), and the helpers every training loop here shares (docs/methods.md, "Training recipes").

Both loops use the recipe of the DCP code (Khaled et al. 2023): SGD with momentum and Nesterov,
weight decay, and a cosine learning-rate schedule stepped every iteration (T_max = epochs ×
iterations per epoch).
On CUDA they use bfloat16 autocast and channels_last.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .schedules import Plateau, recipe_optimiser


@dataclass(frozen=True)
class SGDRecipe:
    """Optimiser and schedule of one training run (config ``train`` / ``knockoff`` sections)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    num_workers: int | None = None  # None: loader_workers decides (the job's threads on CUDA)
    #: None: the cosine schedule over ``epochs`` (the DCP code's recipe). An integer: train until
    #: the validation accuracy stops improving (:class:`Plateau`), ``epochs`` being the cap.
    patience: int | None = None
    lr_decays: int = 2
    decay_factor: float = 0.1
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be an integer >= 1 (or absent), got {self.patience!r}")
        if self.lr_decays < 0 or not 0 < self.decay_factor < 1 or self.warmup_epochs < 0:
            raise ValueError(
                "lr_decays must be >= 0, decay_factor in (0, 1) and warmup_epochs >= 0, got "
                f"{self.lr_decays!r}, {self.decay_factor!r}, {self.warmup_epochs!r}"
            )
        if self.warmup_epochs and self.patience is None:
            raise ValueError("warmup_epochs needs patience (the cosine schedule has no warm-up)")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SGDRecipe:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


class IndexedDataset(Dataset):
    """Wraps a dataset so that items are ``(image, index)``: pairs images with stored answers."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.base[i][0], i


def autocast(device: torch.device) -> Any:
    """bfloat16 autocast on CUDA, nothing on the CPU (the package's one mixed-precision policy)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def loader_workers(requested: int | None, device: torch.device) -> int:
    """DataLoader worker processes: ``requested`` if given (a recipe's ``num_workers``); else, on
    CUDA, the job's threads but one (the rule's ``threads``, set by :func:`msdefense.runtime.job`)
    so that decoding and augmentation keep the GPU fed; on the CPU none (the images are tensors
    in memory, and worker processes would take the cores the model needs)."""
    if requested is not None:
        return int(requested)
    return max(0, torch.get_num_threads() - 1) if device.type == "cuda" else 0


def make_loader(
    data: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    shuffle: bool,
    workers: int | None = 0,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """The package's one DataLoader set-up: order seeded by ``seed`` when shuffled, pinned memory
    on CUDA, ``workers`` through :func:`loader_workers`."""
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=gen,
        num_workers=loader_workers(workers, device),
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
    )


def dataset_tensors(data: Dataset, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """All ``(images, labels)`` of a dataset as two tensors, in order."""
    xs, ys = [], []
    for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys)


class BestOnValidation:
    """Model selection on a validation split (never the test set): keeps the weights with the
    best validation accuracy, the earliest on ties.

    Call :meth:`update` with an accuracy you computed, or build it with ``val`` and ``device`` and
    call the object on a model (the per-epoch ``evaluate`` callback of :func:`distill`).
    """

    def __init__(self, val: Dataset | None = None, device: torch.device | None = None) -> None:
        self.val, self.device = val, device
        self.labels = dataset_labels(val) if val is not None else None
        self.best_acc, self.best_step, self.calls = -math.inf, 0, 0
        self.best_state: dict[str, Tensor] | None = None

    def update(self, model: nn.Module, acc: float, step: int) -> bool:
        """Keep ``model``'s weights if ``acc`` beats the best so far; return whether it did."""
        if acc <= self.best_acc:
            return False
        self.best_acc, self.best_step = acc, step
        self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return True

    def __call__(self, model: nn.Module) -> dict[str, float]:
        if self.val is None or self.labels is None or self.device is None:
            raise ValueError("BestOnValidation needs val and device to evaluate a model itself")
        self.calls += 1
        acc = accuracy(predict_probs(model, self.val, self.device), self.labels)
        self.update(model, acc, self.calls)
        return {"val_acc": acc}

    def best_model(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with the selected weights (``model`` itself if nothing was selected)."""
        if self.best_state is None:
            return model
        best = copy.deepcopy(model)
        best.load_state_dict(self.best_state)
        return best.eval()


def prepare_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """``model`` on ``device`` with its 4-D weights in channels-last order, in place.

    Convolutions read the memory format from their weights, so every activation follows: oneDNN
    (CPU) and cuDNN run the package's small convolutions faster that way (benchmarks/bench_workflow.py).
    Values equal the default layout's up to float rounding; stored weights are made contiguous.
    """
    return model.to(device).to(memory_format=torch.channels_last)


def _batches(inputs: Tensor | Dataset, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    if isinstance(inputs, Tensor):
        yield from inputs.split(batch_size)
    else:
        for x, _ in make_loader(inputs, batch_size=batch_size, device=device, shuffle=False):
            yield x


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    inputs: Tensor | Dataset,
    device: torch.device,
    *,
    batch_size: int = 512,
    amp: bool = True,
) -> Tensor:
    """Float32 logits ``[N, K]`` (on the CPU) of ``model`` on a tensor or dataset of inputs, in order.

    ``amp`` uses bfloat16 autocast on CUDA (a no-op on the CPU).
    """
    model.eval()
    outs = []
    for x in _batches(inputs, batch_size, device):
        with autocast(device) if amp else nullcontext():
            outs.append(model(x.to(device, non_blocking=True)).float().cpu())
    return torch.cat(outs)


@torch.no_grad()
def predict_probs(
    model: nn.Module, data: Tensor | Dataset, device: torch.device, batch_size: int = 512
) -> Tensor:
    """Softmax outputs ``[N, K]`` (float32, CPU) of ``model`` on ``data`` in order."""
    return torch.softmax(predict_logits(model, data, device, batch_size=batch_size), -1)


def dataset_labels(data: Dataset) -> Tensor:
    """Labels of a dataset in order (without decoding images when the dataset allows)."""
    return torch.tensor([int(data[i][1]) for i in range(len(data))])  # type: ignore[arg-type]


def accuracy(probs: Tensor, labels: Tensor) -> float:
    """Exact fraction of correct argmax predictions (not an average of per-batch accuracies)."""
    return float((probs.argmax(-1) == labels).double().mean())


def attacker_labels(answers: Tensor, labels: str) -> Tensor:
    """The targets a KnockoffNets attacker trains on: the answered posteriors (``soft``), or
    their one-hot argmax (``argmax``, the countermeasure of the GRAD² evaluation, Mazeika et al. 2022)."""
    if labels in ("soft", "restored"):  # restored: the defense-aware attacker's restored answers
        return answers
    if labels == "argmax":
        return F.one_hot(answers.argmax(-1), answers.shape[-1]).to(answers.dtype)
    raise ValueError(f"knockoff.labels must be 'soft', 'argmax' or 'restored', got {labels!r}")


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Distillation loss at T = 1: −mean_i Σ_k q_ik log softmax(z_i)_k, with q clamped to
    [1e-12, 1] and renormalised (``distillation_loss_clf`` of the DCP code; docs/methods.md)."""
    q = targets.clamp(1e-12, 1.0)
    q = q / q.sum(-1, keepdim=True)
    return -(q * F.log_softmax(logits.float(), -1)).sum(-1).mean()


def _fit(
    model: nn.Module,
    loader: DataLoader,
    recipe: SGDRecipe,
    *,
    device: torch.device,
    step_loss: Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor]],
    evaluate: Callable[[], dict[str, float]],
    desc: str,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """Shared SGD loop; ``step_loss`` returns (loss, #correct-ish count). The schedule is the
    recipe's: per-step cosine over ``recipe.epochs``, or :class:`Plateau` when it has a patience
    (then ``evaluate`` must give ``val_acc``). The last history row says why training stopped
    (``stop_reason``, one of :data:`~msdefense.schedules.STOP_REASONS`).

    ``stop_after`` ends training after that many epochs of the ``recipe.epochs``-long schedule
    (the defender surrogates' early stopping, docs/methods.md); 0 returns the untrained model.
    """
    plateau = Plateau(recipe, len(loader)) if recipe.patience is not None else None
    opt, sched = recipe_optimiser(model.parameters(), recipe, len(loader))
    history: list[dict[str, Any]] = []
    n_epochs = recipe.epochs if stop_after is None else min(stop_after, recipe.epochs)
    bar = tqdm(range(1, n_epochs + 1), desc=desc, unit="epoch", mininterval=2.0)
    for epoch in bar:
        model.train()
        start, total_loss, total_hits, seen = time.perf_counter(), 0.0, 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if plateau is not None:
                plateau.set_lr(opt)
            with autocast(device):
                loss, hits = step_loss(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total_loss += float(loss.detach()) * len(x)
            total_hits += float(hits)
            seen += len(x)
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": total_loss / seen,
            "train_acc": total_hits / seen,
            "seconds": time.perf_counter() - start,
            **evaluate(),
        }
        history.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k.endswith(("loss", "acc"))})
        if plateau is not None:
            if "val_acc" not in row:
                raise ValueError(f"{desc}: a recipe with patience needs a validation accuracy (val_acc)")
            plateau.end_epoch(row["val_acc"])
            if plateau.stopped:
                break
    if history:
        history[-1]["stop_reason"] = (plateau.stop_reason or "cap") if plateau is not None else "schedule"
    return history


def train_classifier(
    model: nn.Module,
    train_data: Dataset,
    eval_data: Mapping[str, Dataset],
    recipe: SGDRecipe,
    *,
    device: torch.device,
    seed: int,
    desc: str = "train",
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> list[dict[str, Any]]:
    """Supervised training (docs/methods.md, "Training recipes"); history rows carry ``<name>_acc`` per eval set.

    ``loss_fn(logits, labels)`` defaults to cross-entropy; the misinformation model of
    AdaptiveMisinformation passes its own loss (Kariyappa & Qureshi, CVPR 2020).
    """
    loss_fn = loss_fn or F.cross_entropy
    model = prepare_model(model, device)
    labels = {name: dataset_labels(d) for name, d in eval_data.items()}

    def step_loss(m: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        logits = m(x)
        return loss_fn(logits.float(), y), (logits.argmax(-1) == y).sum()

    def evaluate() -> dict[str, float]:
        return {
            f"{n}_acc": accuracy(predict_probs(model, d, device), labels[n]) for n, d in eval_data.items()
        }

    loader = make_loader(
        train_data,
        batch_size=recipe.batch_size,
        device=device,
        shuffle=True,
        workers=recipe.num_workers,
        seed=seed,
    )
    return _fit(model, loader, recipe, device=device, step_loss=step_loss, evaluate=evaluate, desc=desc)


def distill_loader(train_data: Dataset, recipe: SGDRecipe, *, device: torch.device, seed: int) -> DataLoader:
    """Shuffled ``(augmented image, index)`` batches of a distillation run (the index picks the answer)."""
    return make_loader(
        IndexedDataset(train_data),
        batch_size=recipe.batch_size,
        device=device,
        shuffle=True,
        workers=recipe.num_workers,
        seed=seed,
    )


def distill(
    model: nn.Module,
    train_data: Dataset,
    targets: Tensor,
    recipe: SGDRecipe,
    *,
    device: torch.device,
    seed: int,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    desc: str = "distill",
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """Soft-label training on ``(train_data[i], targets[i])`` (KnockoffNets clones, defender surrogates).

    ``train_data`` yields augmented views; ``targets`` are the answers to the un-augmented images.
    """
    if len(targets) != len(train_data):  # type: ignore[arg-type]
        raise ValueError(f"{len(targets)} targets for {len(train_data)} images")  # type: ignore[arg-type]
    model = prepare_model(model, device)
    targets_dev = targets.float().to(device)

    def step_loss(m: nn.Module, x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        logits = m(x)
        q = targets_dev[idx]
        return soft_cross_entropy(logits, q), (logits.argmax(-1) == q.argmax(-1)).sum()

    loader = distill_loader(train_data, recipe, device=device, seed=seed)
    evaluate_fn = (lambda: evaluate(model)) if evaluate else dict
    return _fit(
        model,
        loader,
        recipe,
        device=device,
        step_loss=step_loss,
        evaluate=evaluate_fn,
        desc=desc,
        stop_after=stop_after,
    )
