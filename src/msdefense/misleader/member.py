"""Training one MISLEADER member against its inner attacker, selected on validation data.

The alternating attacker / member update of ``Defense/train_defense.py`` (Cheng et al. 2025,
MISLEADER, arXiv 2506.02362): docs/methods.md (MISLEADER); the deliberate differences from that
code are listed in docs/deviations.md (MISLEADER).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..models import build_model
from ..schedules import cosine_schedule, sgd
from ..seeding import derive_seed
from ..training import (
    BestOnValidation,
    accuracy,
    autocast,
    dataset_labels,
    make_loader,
    predict_logits,
    predict_probs,
    prepare_model,
)
from .augment import attacker_like
from .losses import imitation_loss, kl_from_logits, member_loss
from .spec import MemberRecipe, MemberSpec


def _shuffled(data: Dataset, recipe: MemberRecipe, device: torch.device, seed: int) -> DataLoader:
    n, size, workers = len(data), recipe.batch_size, recipe.num_workers  # type: ignore[arg-type]
    drop = n > size and n % size == 1  # a last batch of one breaks BatchNorm
    return make_loader(
        data, batch_size=size, device=device, shuffle=True, workers=workers, seed=seed, drop_last=drop
    )


def _cycle(loader: DataLoader) -> Iterator[Tensor]:
    while True:
        for x, _ in loader:
            yield x


def _val_attack_images(val: Dataset, kind: str, seed: int, limit: int = 2048) -> Tensor:
    """A fixed attacker-like batch built from (up to ``limit``) validation images."""
    n = min(len(val), limit)  # type: ignore[arg-type]
    x = torch.stack([val[i][0] for i in range(n)])
    return attacker_like(x, torch.Generator().manual_seed(derive_seed(seed, "misleader", "val-attack")), kind)


def train_member(
    teacher: nn.Module,
    spec: MemberSpec,
    recipe: MemberRecipe,
    train_dataset: Dataset,
    val_dataset: Dataset,
    *,
    num_classes: int,
    in_channels: int,
    device: torch.device | str,
    seed: int,
    progress: bool = True,
) -> tuple[nn.Module, list[dict[str, float]], dict[str, Any]]:
    """Train one MISLEADER member against its inner attacker and select it on validation.

    Per benign batch ``(x, y)`` (one epoch = one pass over ``train_dataset``) with an
    attacker-like batch ``x_aug`` (:func:`attacker_like` of an independently shuffled pass over
    the same training data, cycled):

    1. inner attacker ``a`` (``recipe.attacker_arch``): ``a_iter`` forward/backward passes of
       :func:`imitation_loss` on the same ``x_aug`` with accumulated gradients, clip, one SGD step;
    2. member ``d``: :func:`member_loss` against the frozen teacher (eval mode, no grad) and the
       updated attacker (detached), clip, one SGD step.

    Both schedules are cosine over all steps. After every epoch: validation accuracy (model
    selection: the best one, earliest on ties, is returned; never the test set), agreement with
    the teacher, and the member–attacker KL on a fixed attacker-like batch built from the
    validation images (eval mode).

    Returns ``(member, history, info)``: the best member (eval mode, on ``device``); one row per
    epoch (``train_total``, ``train_kd``, ``train_ce``, ``train_div``, ``attacker_loss``, ``lr``,
    ``attacker_lr``, ``val_acc``, ``val_agreement``, ``val_attack_kl``, ``seconds``); and a
    summary (``best_epoch``, ``best_val_acc``, ``teacher_val_acc``, ``epochs_run``, ...).
    """
    dev = torch.device(device)
    start_all = time.perf_counter()
    attacker_arch = recipe.attacker_arch or spec.arch
    kind = recipe.augmentation
    torch.manual_seed(derive_seed(seed, "misleader", "member-init", spec.arch))
    member = prepare_model(build_model(spec.arch, num_classes, in_channels), dev)
    torch.manual_seed(derive_seed(seed, "misleader", "attacker-init", attacker_arch))
    attacker = prepare_model(build_model(attacker_arch, num_classes, in_channels), dev)
    teacher = prepare_model(teacher, dev).eval()

    benign = _shuffled(train_dataset, recipe, dev, derive_seed(seed, "benign"))
    attack_stream = _cycle(_shuffled(train_dataset, recipe, dev, derive_seed(seed, "attack")))
    aug_rng = torch.Generator(device=dev).manual_seed(derive_seed(seed, "misleader", "attack-aug"))
    steps = recipe.epochs * len(benign)
    opt_d = sgd(member.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    opt_a = sgd(
        attacker.parameters(),
        lr=recipe.attacker_lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
    )
    sched_d, sched_a = cosine_schedule(opt_d, steps), cosine_schedule(opt_a, steps)

    val_labels = dataset_labels(val_dataset)
    teacher_val = predict_probs(teacher, val_dataset, dev).argmax(-1)
    val_aug = _val_attack_images(val_dataset, kind, seed)

    history: list[dict[str, float]] = []
    best = BestOnValidation()
    bar = tqdm(range(1, recipe.epochs + 1), desc=f"misleader {spec.arch}", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        member.train()
        attacker.train()
        sums = torch.zeros(5, device=dev)  # total, kd, ce, div, attacker loss (per-sample sums)
        seen = 0
        for x, y in benign:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            x_aug = attacker_like(next(attack_stream).to(dev, non_blocking=True), aug_rng, kind)
            with autocast(dev):
                d_aug = member(x_aug)  # kept with its graph for the member step
            # 1. inner attacker: a_iter accumulated gradients on the same batch, one clipped step
            opt_a.zero_grad(set_to_none=True)
            a_loss = torch.zeros((), device=dev)
            for _ in range(recipe.a_iter):
                with autocast(dev):
                    a_loss = imitation_loss(d_aug, attacker(x_aug))
                a_loss.backward()
            nn.utils.clip_grad_norm_(attacker.parameters(), recipe.clip_norm)
            opt_a.step()
            sched_a.step()
            # 2. member step against the teacher and the updated (detached) attacker
            with torch.no_grad(), autocast(dev):
                t_logits = teacher(x)
                a_logits = attacker(x_aug)
            with autocast(dev):
                d_logits = member(x)
            loss, parts = member_loss(d_logits, t_logits, y, d_aug, a_logits, spec)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(member.parameters(), recipe.clip_norm)
            opt_d.step()
            sched_d.step()
            row = torch.stack([parts["total"], parts["kd"], parts["ce"], parts["div"], a_loss.detach()])
            sums += row * len(x)
            seen += len(x)

        means = (sums / max(seen, 1)).tolist()
        probs = predict_probs(member, val_dataset, dev)
        val_acc = accuracy(probs, val_labels)
        kl = kl_from_logits(predict_logits(member, val_aug, dev), predict_logits(attacker, val_aug, dev))
        row_out = {
            "epoch": epoch,
            "lr": opt_d.param_groups[0]["lr"],
            "attacker_lr": opt_a.param_groups[0]["lr"],
            "train_total": means[0],
            "train_kd": means[1],
            "train_ce": means[2],
            "train_div": means[3],
            "attacker_loss": means[4],
            "val_acc": val_acc,
            "val_agreement": float((probs.argmax(-1) == teacher_val).double().mean()),
            "val_attack_kl": float(kl),
            "seconds": time.perf_counter() - start,
        }
        history.append(row_out)
        best.update(member, val_acc, epoch)
        bar.set_postfix(
            {k: round(v, 4) for k, v in row_out.items() if k in ("train_total", "val_acc", "val_attack_kl")}
        )
        if recipe.patience is not None and epoch - best.best_step >= recipe.patience:
            break

    if best.best_state is not None:
        member.load_state_dict(best.best_state)
    member.eval()
    info: dict[str, Any] = {
        "spec": asdict(spec),
        "recipe": asdict(recipe),
        "attacker_arch": attacker_arch,
        "augmentation": kind,
        "best_epoch": best.best_step,
        "best_val_acc": best.best_acc,
        "teacher_val_acc": float((teacher_val == val_labels).double().mean()),
        "epochs_run": len(history),
        "steps_per_epoch": len(benign),
        "seconds": time.perf_counter() - start_all,
    }
    return member, history, info
