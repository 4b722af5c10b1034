"""Several models of one architecture trained together on the same images (``torch.func``).

The KnockoffNets clones of a defense's sweep start from the same initialisation, see the same
augmented images in the same order and differ only in the answers they learn from
(:func:`msdefense.stages.attacks.train_knockoff`). :func:`distill_stacked` trains them as one
stack: the parameters of the E models are stacked along a new first dimension, one
``vmap``-ed ``functional_call`` runs all E models on each batch, the sum of the E losses is
differentiated once, and one SGD optimiser steps the stacked tensors (SGD with momentum, weight
decay and Nesterov is elementwise, so each slice takes exactly the step it would alone).

It is the same computation as E runs of :func:`msdefense.training.distill` up to float rounding
(tested: ``tests/test_stacked.py``): the same global random stream drives the augmentation, and
the per-epoch evaluation draws from it as often as one model's would. Models with buffers
(batch norm's running statistics) are not stackable: :func:`stackable` says so and the caller
loops over them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .schedules import Plateau, recipe_optimiser
from .training import SGDRecipe, autocast, distill_loader, prepare_model


def stackable(model: nn.Module) -> bool:
    """Whether models like ``model`` can be trained as one stack: no buffers (running statistics
    would be updated per model inside the stacked call)."""
    return next(model.buffers(), None) is None


def _soft_cross_entropy_each(logits: Tensor, targets: Tensor) -> Tensor:
    """:func:`msdefense.training.soft_cross_entropy` of each model: ``[E, B, K]`` → ``[E]``."""
    q = targets.clamp(1e-12, 1.0)
    q = q / q.sum(-1, keepdim=True)
    return -(q * torch.log_softmax(logits.float(), -1)).sum(-1).mean(-1)


def _load(models: Sequence[nn.Module], params: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for e, model in enumerate(models):
            for name, value in params.items():
                model.get_parameter(name).copy_(value[e])


def distill_stacked(
    models: Sequence[nn.Module],
    train_data: Dataset,
    targets: Sequence[Tensor],
    recipe: SGDRecipe,
    *,
    device: torch.device,
    seed: int,
    evaluate: Sequence[Callable[[nn.Module], dict[str, float]]] | None = None,
    desc: str = "distill",
) -> list[list[dict[str, Any]]]:
    """:func:`msdefense.training.distill` of ``models[e]`` on ``targets[e]`` for every e at once;
    the models end with their final weights and each gets its own history.

    The models must be stackable (:func:`stackable`) and start in the state each of the E runs
    would start from; ``evaluate[e]`` is called on ``models[e]`` after every epoch.
    """
    if not models or len(models) != len(targets):
        raise ValueError(f"{len(models)} models for {len(targets)} target sets")
    if not all(stackable(m) for m in models):
        raise ValueError("distill_stacked needs models without buffers; train batch-norm models one by one")
    for t in targets:
        if len(t) != len(train_data):  # type: ignore[arg-type]
            raise ValueError(f"{len(t)} targets for {len(train_data)} images")  # type: ignore[arg-type]
    models = [prepare_model(m, device) for m in models]
    params, _ = stack_module_state(list(models))  # type: ignore[arg-type]
    params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    base = models[0]
    targets_dev = torch.stack([t.float() for t in targets]).to(device)  # [E, N, K]

    def forward(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, p, (x,))

    stacked_forward = vmap(forward, in_dims=(0, None))
    loader = distill_loader(train_data, recipe, device=device, seed=seed)
    opt, sched = recipe_optimiser(params.values(), recipe, len(loader))
    plateaus = None if recipe.patience is None else [Plateau(recipe, len(loader)) for _ in models]
    histories: list[list[dict[str, Any]]] = [[] for _ in models]
    n = len(models)
    bar = tqdm(range(1, recipe.epochs + 1), desc=f"{desc} ({n} stacked)", unit="epoch", mininterval=2.0)
    for epoch in bar:
        active = [e for e in range(n) if plateaus is None or not plateaus[e].stopped]
        if not active:
            break
        base.train()
        start = time.perf_counter()
        total_loss = torch.zeros(n, dtype=torch.float64)
        total_hits = torch.zeros(n, dtype=torch.float64)
        seen = 0
        for x, idx in loader:
            x, idx = x.to(device, non_blocking=True), idx.to(device, non_blocking=True)
            q = targets_dev[:, idx]
            with autocast(device):
                logits = stacked_forward(params, x)
                losses = _soft_cross_entropy_each(logits, q)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            if plateaus is None:
                opt.step()
                sched.step()  # type: ignore[union-attr]
            else:
                _step_each(opt, params, plateaus)
            total_loss += losses.detach().double().cpu() * len(x)
            total_hits += (logits.argmax(-1) == q.argmax(-1)).sum(-1).double().cpu()
            seen += len(x)
        seconds = time.perf_counter() - start
        _load(models, params)
        scores = _evaluate_like_one([models[e] for e in active], evaluate and [evaluate[e] for e in active])
        for e, score in zip(active, scores, strict=True):
            lr = opt.param_groups[0]["lr"] if plateaus is None else plateaus[e].lr_used
            row: dict[str, Any] = {
                "epoch": epoch,
                "lr": lr,
                "train_loss": float(total_loss[e]) / seen,
                "train_acc": float(total_hits[e]) / seen,
                "seconds": seconds,
                **score,
            }
            histories[e].append(row)
            if plateaus is not None:
                if "val_acc" not in row:
                    raise ValueError(f"{desc}: a recipe with patience needs a validation accuracy (val_acc)")
                plateaus[e].end_epoch(row["val_acc"])
        bar.set_postfix({"train_loss": round(float(total_loss.mean()) / seen, 4)})
    for e, history in enumerate(histories):
        if history:
            history[-1]["stop_reason"] = (plateaus[e].stop_reason or "cap") if plateaus else "schedule"
    return histories


def _step_each(opt: torch.optim.Optimizer, params: dict[str, Tensor], plateaus: Sequence[Plateau]) -> None:
    """One SGD step with each model's own learning rate (its :class:`Plateau`; 0 once stopped,
    which leaves its weights as they were). SGD's update is the rate times a direction that does
    not depend on the rate, so a step at rate 1 gives the direction of every slice."""
    rates = [0.0 if p.stopped else p.next_lr() for p in plateaus]
    if len(set(rates)) == 1:  # every clone at one rate (until the first decay or stop): a plain step
        for group in opt.param_groups:
            group["lr"] = rates[0]
        opt.step()
        return
    before = {k: v.detach().clone() for k, v in params.items()}
    for group in opt.param_groups:
        group["lr"] = 1.0
    opt.step()
    with torch.no_grad():
        for k, v in params.items():
            scale = torch.tensor(rates, dtype=v.dtype, device=v.device).view(-1, *([1] * (v.dim() - 1)))
            v.copy_(before[k] + scale * (v - before[k]))


def _evaluate_like_one(
    models: Sequence[nn.Module], evaluate: Sequence[Callable[[nn.Module], dict[str, float]]] | None
) -> list[dict[str, float]]:
    """Every model's evaluation, leaving the global random stream as one evaluation would
    (a DataLoader draws its base seed from it): the next epoch's augmentation stays that of a
    single run."""
    if evaluate is None:
        return [{} for _ in models]
    if len(evaluate) != len(models):
        raise ValueError(f"{len(evaluate)} evaluations for {len(models)} models")
    state = torch.get_rng_state()
    rest = [evaluate[e](models[e]) for e in range(1, len(models))]
    torch.set_rng_state(state)
    return [evaluate[0](models[0]), *rest]
