"""The defense-aware attacker's restorer (docs/methods.md, "Defense-aware KnockoffNets"): an MLP
that maps a defended answer back to the clean posterior, and its fitting.

The restorers of one sweep (one per value, each with its own seed) are fitted together as one
stacked model: every layer is a batch of matrices, one per value, and one Adam step updates them
all. Each value keeps its own initialisation, batches, held-out split and selection, and the loss is
the sum of the values' losses, so each value's gradient and Adam update are those of fitting it
alone (to float rounding); one step costs about what one value's step costs, which is where a
value's restorer used to spend most of its time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_FLOOR = 1e-6  # the restorer reads log(max(answer, LOG_FLOOR))


def _centred_log(answers: Tensor) -> Tensor:
    logs = answers.clamp_min(LOG_FLOOR).log()
    return logs - logs.mean(-1, keepdim=True)


class Restorer(nn.Module):
    """A defended answer ``[B, K]`` → logits of the clean posterior: an MLP on the answer's centred
    log (log ỹ minus its mean over the classes, blind to the answer's scale)."""

    def __init__(self, classes: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(classes, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, classes),
        )

    def forward(self, answers: Tensor) -> Tensor:
        return self.net(_centred_log(answers))

    @torch.no_grad()
    def restore(self, answers: Tensor) -> Tensor:
        """The restored posteriors (rows on the simplex)."""
        return torch.softmax(self(answers), -1)


def _soft_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean soft cross-entropy over the last-but-one dimension: one value per leading index."""
    return -(targets * F.log_softmax(logits, -1)).sum(-1).mean(-1)


class _Stacked(nn.Module):
    """``E`` restorers as one module: layer ``i`` holds weights ``[E, in, out]`` and biases
    ``[E, 1, out]``; ``forward`` maps answers ``[E, B, K]`` to logits ``[E, B, K]``."""

    def __init__(self, members: Sequence[Restorer]) -> None:
        super().__init__()
        linears = [[m for m in r.net if isinstance(m, nn.Linear)] for r in members]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].weight.detach().T for layers in linears]).contiguous())
            for i in range(3)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].bias.detach()[None] for layers in linears])) for i in range(3)
        )

    def forward(self, answers: Tensor) -> Tensor:
        h = _centred_log(answers)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < 2:
                h = torch.relu(h)
        return h

    def state(self) -> list[Tensor]:
        return [p.detach().clone() for p in self.parameters()]

    def member(self, e: int, state: Sequence[Tensor], *, classes: int, width: int) -> Restorer:
        """Value ``e`` of ``state`` (a :meth:`state`) as a :class:`Restorer`."""
        weights, biases = state[:3], state[3:]
        restorer = Restorer(classes, width)
        linears = [m for m in restorer.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for layer, w, b in zip(linears, weights, biases, strict=True):
                layer.weight.copy_(w[e].T)
                layer.bias.copy_(b[e, 0])
        return restorer.eval()


def fit_restorers(
    defended: Tensor,
    clean: Tensor,
    *,
    seeds: Sequence[int],
    steps: int,
    width: int,
    lr: float,
    batch_size: int = 256,
    check_every: int = 100,
    patience: int | None = None,
) -> list[tuple[Restorer, dict[str, float]]]:
    """One :class:`Restorer` per value: ``defended[e]`` → ``clean`` (``[E, M, K]`` and ``[M, K]``)
    by Adam steps on random batches, seeded by ``seeds[e]`` (initialisation, batches and a held-out
    tenth of the pairs), the state with the lowest held-out cross-entropy kept (checked every
    ``check_every`` steps). A value stops on its plateau, ``patience`` checks without a lower
    held-out loss, or at ``steps`` (``patience`` None: always ``steps``); the fit ends when every
    value has stopped, and a stopped value's kept state no longer changes. Each comes with the
    held-out mean L1 distances to the clean posteriors before (``l1_defended``) and after
    restoration (``l1_restored``) and the Adam steps it took (``steps``)."""
    n_values, n, classes = defended.shape
    if len(seeds) != n_values:
        raise ValueError(f"fit_restorers: {n_values} sets of answers but {len(seeds)} seeds")
    if n < 2:
        raise ValueError(f"a restorer needs at least 2 pairs (one to fit, one to select on), got {n}")
    gens, vals, trains, members = [], [], [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(n, generator=g)
        held = max(1, n // 10)
        gens.append(g)
        vals.append(order[:held])
        trains.append(order[held:])
        torch.manual_seed(int(seed))
        members.append(Restorer(classes, width))
    rows = torch.arange(n_values)[:, None]
    val = torch.stack(vals)  # [E, V]
    val_in, val_target = defended[rows, val], clean[val]
    model = _Stacked(members)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch = min(batch_size, n - len(vals[0]))
    best = torch.full((n_values,), float("inf"))
    best_state = model.state()
    since = torch.zeros(n_values, dtype=torch.long)  # checks since a value's last improvement
    stopped_at = torch.full((n_values,), steps, dtype=torch.long)
    for step in range(1, steps + 1):
        idx = torch.stack(
            [t[torch.randint(len(t), (batch,), generator=g)] for t, g in zip(trains, gens, strict=True)]
        )
        opt.zero_grad(set_to_none=True)
        _soft_ce(model(defended[rows, idx]), clean[idx]).sum().backward()
        opt.step()
        if step % check_every == 0 or step == steps:
            with torch.no_grad():
                losses = _soft_ce(model(val_in), val_target)
            running = stopped_at == steps
            better = (losses < best) & running
            if better.any():
                state = model.state()
                for saved, now in zip(best_state, state, strict=True):
                    saved[better] = now[better]
                best = torch.where(better, losses, best)
            since = torch.where(better, 0, since + 1)
            if patience is not None:
                stopped_at = torch.where(running & (since >= patience), step, stopped_at)
                if (stopped_at < steps).all():
                    break
    out = []
    for e in range(n_values):
        restorer = model.member(e, best_state, classes=classes, width=width)
        d, c = defended[e][vals[e]], clean[vals[e]]
        fit = {
            "l1_defended": float((d - c).abs().sum(-1).mean()),
            "l1_restored": float((restorer.restore(d) - c).abs().sum(-1).mean()),
            "steps": int(stopped_at[e]),
        }
        out.append((restorer, fit))
    return out


def fit_restorer(
    defended: Tensor, clean: Tensor, *, seed: int, **options: int | float | None
) -> tuple[Restorer, dict[str, float]]:
    """One value's restorer: :func:`fit_restorers` for ``defended`` ``[M, K]`` alone."""
    return fit_restorers(defended[None], clean, seeds=[seed], **options)[0]  # type: ignore[arg-type]


def restore(restorer: Restorer | None, answers: Tensor) -> Tensor:
    """The clone's targets: the answers through the restorer (themselves where inverted exactly)."""
    return answers if restorer is None else restorer.restore(answers.float()).to(answers.dtype)
