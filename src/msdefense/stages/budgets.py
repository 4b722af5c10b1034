"""Stage of ``rules/attacks.smk``'s ``train_knockoff_budgets``: the KnockoffNets budget curves.

For every budget of ``knockoff.budgets`` and value of one defense's sweep, a soft-label clone
retrained from scratch, with the sweep's clone seed and recipe, on the first ``b`` queries of the
attacker's query order and their stored answers (docs/methods.md, "Budget curves"). An epoch is
the full query set's length, cycling through the ``b`` queries, so every clone of a curve gets the
same number of SGD steps per epoch and the same plateau rule: the curve varies the information
the attacker bought, not its optimisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import layout
from ..artifacts import read_posteriors, sweep_index
from ..attacks.knockoff import KnockoffConfig, budget_sizes, first_queries, query_order, run_knockoff
from ..io import save_json
from ..seeding import derive_seed, seed_everything
from ..victims import save_classifier
from .attacks import KnockoffSweep, clone_record, sweep_for
from .context import stage
from .requests import VictimData


@dataclass(frozen=True, kw_only=True)
class KnockoffBudgetRequest(KnockoffSweep):
    """The budget clones of one sweep (``out_clones``: ``<queries>/<param>.safetensors``,
    :data:`~msdefense.layout.KNOCKOFF_BUDGET_CLONE`) and one file holding their records."""

    out_budgets: str

    def clone_path(self, queries: int, param: str) -> str:
        return str(
            Path(self.out_clones) / layout.KNOCKOFF_BUDGET_CLONE_FILE.format(queries=queries, param=param)
        )


def train_knockoff_budgets(request: KnockoffBudgetRequest) -> list[dict[str, Any]]:
    """Soft-label clones at the nested budgets of ``knockoff.budgets`` for every sweep value (the
    strongest alone where ``knockoff.strongest_only`` names ``budgets``: :func:`.attacks.sweep_for`)."""
    r, cfg = request, request.victim_cfg
    attack = KnockoffConfig.from_config(r.knockoff, "soft")
    seed = r.stream_seed
    records = []
    with stage(r.device) as ctx:
        answers = read_posteriors(r.in_posteriors, r.params)
        data = VictimData(cfg["dataset"], r.data)
        train, test, val = data.transfer(r.transfer_cfg, augment=True), data.test(), data.val()
        Path(r.out_clones).mkdir(parents=True, exist_ok=True)
        order = query_order(len(train), derive_seed(seed, "query-order"))
        for budget in budget_sizes(r.knockoff.get("budgets", []), len(train)):
            for param in sweep_for(r):
                e = sweep_index(answers, param, r.in_posteriors)
                images, seen = first_queries(
                    train, torch.from_numpy(answers["transfer"][e]), order, budget, epoch=len(train)
                )
                seed_everything(seed)
                start = time.perf_counter()
                result = run_knockoff(
                    seen,
                    images,
                    attack,
                    val=val,
                    num_classes=data.spec.num_classes,
                    in_channels=data.spec.in_channels,
                    device=ctx.device,
                    seed=seed,
                    desc=f"knockoff {r.defense}={param} (soft labels, {budget} queries)",
                    backbone=r.weights,
                )
                seconds = time.perf_counter() - start
                records.append(
                    clone_record(
                        r,
                        attack,
                        answers,
                        e,
                        param,
                        result,
                        seconds=seconds,
                        fit={},
                        test=test,
                        ctx=ctx,
                        queries=budget,
                    )
                )
                save_classifier(
                    result.clone, r.clone_path(budget, param), arch=attack.arch, dataset=cfg["dataset"]
                )
    save_json(records, r.out_budgets)
    return records
