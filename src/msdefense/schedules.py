"""The optimiser and learning-rate schedules of the package's training loops
(docs/methods.md, "Training recipes"): SGD, the per-step cosine schedule of the DCP code, and
:class:`Plateau`, which trains until the validation accuracy stops improving."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .training import SGDRecipe


def sgd(
    params: Iterable[Tensor], *, lr: float, momentum: float, weight_decay: float, nesterov: bool = False
) -> torch.optim.SGD:
    """SGD as every training loop here uses it (Nesterov only where there is momentum)."""
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0, weight_decay=weight_decay
    )


def cosine_schedule(
    opt: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """Cosine learning-rate decay stepped once per iteration over ``total_steps`` iterations."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))


def recipe_optimiser(
    params: Iterable[Tensor], recipe: SGDRecipe, steps_per_epoch: int
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.CosineAnnealingLR | None]:
    """The recipe's SGD over ``params`` and its per-step cosine schedule over the recipe's epochs
    (None for a recipe with a patience: :class:`Plateau` sets the rate instead)."""
    opt = sgd(
        params,
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    if recipe.patience is not None:
        return opt, None
    return opt, cosine_schedule(opt, recipe.epochs * steps_per_epoch)


#: Why a run stopped: its validation accuracy reached a plateau after the last decay, or the cap
#: (``epochs``) came first; ``schedule``: a fixed-length cosine schedule ran out (no patience).
STOP_REASONS = ("plateau", "cap", "schedule")


class Plateau:
    """Train until the validation accuracy stops improving (``SGDRecipe.patience``).

    The learning rate rises linearly from ``lr / steps`` to ``lr`` over the first
    ``warmup_epochs`` epochs (no dead start at a high rate), then stays constant. After
    ``patience`` epochs without a new best validation accuracy it is multiplied by
    ``decay_factor``, at most ``lr_decays`` times; the next plateau after the last decay ends
    training (``stop_reason`` ``plateau``), and so does the cap of ``epochs`` (``cap``). One
    instance per model.
    """

    def __init__(self, recipe: SGDRecipe, steps_per_epoch: int) -> None:
        if recipe.patience is None:
            raise ValueError("Plateau needs a recipe with patience")
        self.recipe = recipe
        self.warmup_steps = recipe.warmup_epochs * steps_per_epoch
        self.base_lr, self.step, self.best, self.waited = recipe.lr, 0, -math.inf, 0
        self.decays, self.epochs, self.stop_reason, self.lr_used = 0, 0, "", recipe.lr

    @property
    def stopped(self) -> bool:
        return bool(self.stop_reason)

    def next_lr(self) -> float:
        """The rate of the next step, counting the step."""
        self.lr_used = self.lr()
        self.step += 1
        return self.lr_used

    def set_lr(self, opt: torch.optim.Optimizer) -> None:
        """Give ``opt`` the rate of the next step and count the step."""
        rate = self.next_lr()
        for group in opt.param_groups:
            group["lr"] = rate

    def lr(self) -> float:
        """The learning rate of the next step."""
        if self.step < self.warmup_steps:
            return self.base_lr * (self.step + 1) / self.warmup_steps
        return self.base_lr

    def end_epoch(self, val_acc: float) -> None:
        """Record one epoch's validation accuracy: decay the rate or stop on a plateau, stop on the cap."""
        self.epochs += 1
        if val_acc > self.best:
            self.best, self.waited = val_acc, 0
        else:
            self.waited += 1
        if self.waited >= self.recipe.patience and self.step >= self.warmup_steps:  # type: ignore[operator]
            if self.decays < self.recipe.lr_decays:
                self.decays, self.waited = self.decays + 1, 0
                self.base_lr *= self.recipe.decay_factor
            else:
                self.stop_reason = "plateau"
        if not self.stopped and self.epochs >= self.recipe.epochs:
            self.stop_reason = "cap"
