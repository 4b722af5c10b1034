"""Data-free model extraction: DFME and MAZE as one loop parameterised by :class:`DataFreeConfig`.

- DFME: Truong, Maini, Walls, Papernot, "Data-Free Model Extraction", CVPR 2021 (Alg. 1; code
  ``cake-lab/datafree-model-extraction``).
- MAZE: Kariyappa, Prakash, Qureshi, "MAZE: Data-Free Model Stealing Attack Using Zeroth-Order Gradient
  Estimation", CVPR 2021 (code ``sanjaykariyappa/MAZE``).

Formulas and defaults: docs/methods.md (DFME, MAZE); the knobs and presets: :mod:`.datafree_config`.
Both are the same min-max game: a generator G maps z ~ N(0, I) to pre-tanh images x_pre; the student S
is trained to agree with the oracle on the images, G is trained to *maximise* the student-oracle disagreement.
The oracle is a black box, so ∂L/∂x_pre is estimated by forward finite differences along random unit
directions in pre-tanh space and pushed into G with ``x_pre.backward(ĝ)``. DFME and MAZE differ only in
loss, number of directions, optimisers, experience replay and schedule; the presets set those.

Probabilities, not logits: the :class:`~msdefense.oracle.Oracle` answers probabilities p. The attack
takes ``log(p + log_floor)`` itself (``log_floor`` 1e-12 by default; ℓ1 loss, then the per-sample mean of
the log-probabilities is subtracted for ``logit_correction="mean"``) and uses p directly as the KL target.
The MISLEADER DFME fork instead applied ``log_softmax`` / ``softmax`` to the ensemble's *probabilities*, as
if they were logits: its ℓ1 target became p − 1/K and its KL target softmax(p), nearly uniform. That
handling is the explicit option ``oracle_view: probabilities_as_logits``; the default ``probabilities`` is
the correct one.

Query accounting: every image sent to the oracle is one query, including each zeroth-order probe. The cost of
one iteration is B·(g_iter·(m+1) + d_iter) (DFME) or, when the first student step reuses the generator
batch and its already-paid answers (MAZE), B·(g_iter·(m+1) + d_iter − 1) (= 128·(11+4) = 1920). The loop
stops before an iteration whose cost exceeds what is left, so the oracle never has to refuse a batch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..models import build_generator
from ..oracle import Oracle
from ..schedules import cosine_schedule, sgd
from ..seeding import seed_everything
from ..training import BestOnValidation, accuracy, predict_logits, prepare_model
from .datafree_config import DataFreeConfig

# --------------------------------------------------------------------------------------------------------------
# pieces


def to_victim_input(x_pre: Tensor, cfg: DataFreeConfig) -> Tensor:
    """Map pre-tanh generator output to the victim's input space.

    ``"tanh"``: tanh(x_pre) ∈ (−1, 1) fed as is. This matches this package's victims (normalised with
    mean = std = 0.5) and MAZE's convention. The original DFME also fed raw tanh output, but to a victim trained
    on CIFAR mean/std-normalised images. ``"tanh_to_unit_then_normalise"``: (tanh + 1)/2 ∈ (0, 1), then
    (x − mean)/std with ``cfg.input_mean`` / ``cfg.input_std`` (per channel, or one value for all).
    """
    x = torch.tanh(x_pre)
    if cfg.input_range == "tanh":
        return x
    mean = torch.as_tensor(cfg.input_mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(cfg.input_std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return ((x + 1) / 2 - mean) / std


def disagreement(student_logits: Tensor, probs: Tensor, cfg: DataFreeConfig) -> Tensor:
    """Per-sample student–oracle disagreement D_i ``[N]`` (the student minimises mean_i D_i, G maximises it).

    ``cfg.oracle_view = "probabilities_as_logits"`` reads p as logits (the MISLEADER DFME fork):
    the ℓ1 target is p itself (p − 1/K after the mean correction), the KL target softmax(p).

    - ``l1``: mean_k |s_ik − t_ik| with t = log(p + cfg.log_floor), minus its per-sample mean if
      ``logit_correction="mean"`` (DFME's logit correction; log-probabilities equal logits up to a
      per-sample constant).
    - ``kl``: KL(p ‖ softmax(s)) = Σ_k p_k (log p_k − log softmax(s)_k) (MAZE).
    """
    s = student_logits.float()
    p = probs.float()
    as_logits = cfg.oracle_view == "probabilities_as_logits"
    if cfg.loss == "l1":
        t = p if as_logits else torch.log(p + cfg.log_floor)
        if cfg.logit_correction == "mean":
            t = t - t.mean(-1, keepdim=True)
        return (s - t).abs().mean(-1)
    if as_logits:
        log_q = F.log_softmax(p, -1)
        return (log_q.exp() * (log_q - F.log_softmax(s, -1))).sum(-1)
    return (p * (torch.log(p + cfg.log_floor) - F.log_softmax(s, -1))).sum(-1)


def zo_gradient(
    x_pre: Tensor,
    objective: Callable[[Tensor], Tensor],
    num_dirs: int,
    epsilon: float,
    rng: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Forward-difference estimate of ∂/∂x_pre of (1/N) Σ_i f(x_pre_i) (DFME, MAZE).

    For each sample, m directions u_ij are drawn uniformly on the unit sphere of R^d (Gaussian, normalised) and
    ĝ_i = (1/N)·(d/m)·Σ_j [f(x_i + ε u_ij) − f(x_i)]/ε · u_ij (E[u uᵀ] = I/d makes it unbiased as ε → 0).
    ``objective`` is called ONCE on all N·(m+1) points (sample-major, the unperturbed point first) and returns
    the per-point values ``[N·(m+1)]``. Returns (ĝ ``[N, ...]``, f at the unperturbed points ``[N]``).
    """
    x = x_pre.detach()
    n, d = len(x), x[0].numel()
    u = torch.randn(n, num_dirs, d, generator=rng, device=x.device, dtype=x.dtype)
    u = u / u.norm(dim=-1, keepdim=True)
    points = torch.cat([x.reshape(n, 1, d), x.reshape(n, 1, d) + epsilon * u], dim=1)
    values = objective(points.reshape(n * (num_dirs + 1), *x.shape[1:])).detach().reshape(n, num_dirs + 1)
    diffs = (values[:, 1:] - values[:, :1]) / epsilon  # [N, m]
    grad = (d / num_dirs) * torch.einsum("nm,nmd->nd", diffs, u) / n
    return grad.reshape(x.shape), values[:, 0]


class ReplayBuffer:
    """Bounded experience replay of (image, oracle answer) pairs (MAZE; the original buffer is unbounded).

    A ring buffer allocated on the first ``add``: at most ``capacity`` pairs, the oldest overwritten first.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.x: Tensor | None = None
        self.p: Tensor | None = None
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @torch.no_grad()
    def add(self, x: Tensor, p: Tensor) -> None:
        x, p = x.detach()[-self.capacity :], p.detach()[-self.capacity :]
        if self.x is None or self.p is None:
            self.x = x.new_empty(self.capacity, *x.shape[1:])
            self.p = p.new_empty(self.capacity, *p.shape[1:])
        idx = (self._next + torch.arange(len(x), device=self.x.device)) % self.capacity
        self.x[idx], self.p[idx] = x, p
        self._next = (self._next + len(x)) % self.capacity
        self._size = min(self.capacity, self._size + len(x))

    def sample(self, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.x is None or self.p is None or self._size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(self._size, (n,), generator=rng, device=rng.device).to(self.x.device)
        return self.x[idx], self.p[idx]


class CountingOracle:
    """The attack's side of the oracle: sends images in chunks and counts every one of them itself."""

    def __init__(self, oracle: Oracle, chunk: int) -> None:
        self.oracle, self.chunk, self.sent = oracle, chunk, 0

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        outs = [self.oracle(part) for part in x.detach().split(self.chunk)]
        self.sent += len(x)
        return torch.cat(outs).to(x.device)


@dataclass
class DataFreeResult:
    """What an attack run hands back. ``student`` is the final model; ``best_state`` the best on validation."""

    student: nn.Module
    generator: nn.Module
    best_state: dict[str, Tensor] | None
    best_val_acc: float
    best_iteration: int
    history: list[dict[str, float]]
    queries_used: int
    iterations: int
    wall_seconds: float
    cost_per_iteration: int
    config: dict[str, Any] = field(default_factory=dict)


def _schedulers(opts: Sequence[torch.optim.Optimizer], cfg: DataFreeConfig, total: int) -> list[Any]:
    if cfg.schedule == "multistep":
        steps = sorted({int(f * total) for f in cfg.milestones})
        return [torch.optim.lr_scheduler.MultiStepLR(o, milestones=steps, gamma=cfg.gamma) for o in opts]
    if cfg.schedule == "cosine":
        return [cosine_schedule(o, total) for o in opts]
    return []


# --------------------------------------------------------------------------------------------------------------
# the loop


def run_datafree(
    oracle: Oracle,
    student: nn.Module,
    cfg: DataFreeConfig,
    *,
    image_shape: tuple[int, int, int],
    device: torch.device | str = "cpu",
    val_data: tuple[Tensor, Tensor] | None = None,
    test_data: tuple[Tensor, Tensor] | None = None,
    generator: nn.Module | None = None,
    progress: bool = True,
) -> DataFreeResult:
    """Run DFME / MAZE (per ``cfg``) against ``oracle``; returns the final and the best-on-validation student.

    ``image_shape`` = (C, H, W) of the victim input (builds the generator unless ``generator`` is given).
    ``val_data`` = (x, y) tensors, already in the victim's input space, used every ``cfg.eval_every`` iterations
    and at the end for model selection; never pass the test set there. ``test_data``: evaluated at
    the same checkpoints for the budget curves only (history column ``test_acc``), never selected on.
    The budget is min(``cfg.query_budget``, ``oracle.queries_left``); ``oracle`` must hold one defense parameter.
    """
    device = torch.device(device)
    seed_everything(cfg.seed)
    rng = torch.Generator(device=device).manual_seed(cfg.seed)
    c, h, w = image_shape
    if generator is None:
        kwargs = {} if cfg.generator_width is None else {"ngf": cfg.generator_width}
        generator = build_generator(cfg.generator, cfg.nz, c, h, **kwargs)
    gen, student = prepare_model(generator, device), prepare_model(student, device)
    if h != w:
        raise ValueError(f"square images only, got {h}×{w}")

    ask = CountingOracle(oracle, cfg.query_chunk)
    left = oracle.queries_left
    budget = cfg.query_budget if left is None else min(cfg.query_budget, left)
    cost = cfg.cost_per_iteration
    total = cfg.iterations_for(budget)

    opt_s = sgd(
        student.parameters(),
        lr=cfg.lr_S,
        momentum=cfg.student_momentum,
        weight_decay=cfg.student_weight_decay,
    )
    if cfg.generator_optimizer == "adam":
        opt_g: torch.optim.Optimizer = torch.optim.Adam(
            gen.parameters(), lr=cfg.lr_G, weight_decay=cfg.generator_weight_decay
        )
    else:
        opt_g = sgd(
            gen.parameters(),
            lr=cfg.lr_G,
            momentum=cfg.generator_momentum,
            weight_decay=cfg.generator_weight_decay,
        )
    scheds = _schedulers([opt_s, opt_g], cfg, total)
    replay = ReplayBuffer(cfg.replay_size) if cfg.replay_size > 0 else None

    def sample_images() -> Tensor:
        z = torch.randn(cfg.batch_size, cfg.nz, generator=rng, device=device)
        return gen(z)

    def student_step(x: Tensor, p: Tensor) -> float:
        student.train()
        loss = disagreement(student(x), p, cfg).mean()
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        opt_s.step()
        return float(loss.detach())

    history: list[dict[str, float]] = []
    best = BestOnValidation()
    sums = {"loss_S": 0.0, "loss_G": 0.0, "loss_replay": 0.0}
    n_since = 0
    start = time.perf_counter()
    gen.train()
    bar = tqdm(range(1, total + 1), desc=cfg.name, unit="it", mininterval=2.0, disable=not progress)
    it = 0
    for it in bar:
        # stop before an iteration the budget cannot pay for (never rely on the oracle refusing)
        own_left = budget - ask.sent
        if own_left < cost or (oracle.queries_left is not None and oracle.queries_left < cost):
            it -= 1
            break
        # ---- generator phase: maximise the disagreement with a zeroth-order gradient through the oracle
        last_batch: tuple[Tensor, Tensor] | None = None
        for _ in range(cfg.g_iter):
            x_pre = sample_images()
            student.eval()
            answers: list[Tensor] = []

            def objective(points: Tensor, answers: list[Tensor] = answers) -> Tensor:
                x = to_victim_input(points, cfg)
                p = ask(x)
                answers.append(p)
                with torch.no_grad():
                    return -disagreement(student(x), p, cfg)

            grad, base = zo_gradient(x_pre, objective, cfg.grad_m, cfg.grad_epsilon, rng)
            opt_g.zero_grad(set_to_none=True)
            x_pre.backward(grad)
            opt_g.step()
            sums["loss_G"] += float(base.mean()) / cfg.g_iter
            p_all = answers[0].reshape(len(x_pre), cfg.grad_m + 1, -1)
            last_batch = (to_victim_input(x_pre.detach(), cfg), p_all[:, 0])
        # ---- student phase: d_iter steps, each on a fresh queried batch (MAZE: the first reuses the G batch)
        loss_s = 0.0
        x, p = None, None
        for k in range(cfg.d_iter):
            if k == 0 and cfg.reuse_generator_batch and last_batch is not None:
                x, p = last_batch
            else:
                with torch.no_grad():
                    x = to_victim_input(sample_images(), cfg)
                p = ask(x)
            loss_s += student_step(x, p) / cfg.d_iter
        sums["loss_S"] += loss_s
        # ---- experience replay (MAZE): store the last student batch, then iter_exp steps on buffer samples
        if replay is not None and x is not None and p is not None:
            replay.add(x, p)
            for _ in range(cfg.iter_exp):
                xr, pr = replay.sample(cfg.batch_size, rng)
                sums["loss_replay"] += student_step(xr, pr) / cfg.iter_exp
        for s in scheds:
            s.step()
        n_since += 1
        if it % cfg.eval_every == 0 or it == total:
            val_acc = math.nan
            if val_data is not None:
                val_acc = accuracy(predict_logits(student, val_data[0], device, amp=False), val_data[1])
                best.update(student, val_acc, it)
            test_acc = math.nan
            if test_data is not None:
                test_acc = accuracy(predict_logits(student, test_data[0], device, amp=False), test_data[1])
            row = {
                "iteration": it,
                "queries_used": ask.sent,
                **{k: v / n_since for k, v in sums.items()},
                "val_acc": val_acc,
                "test_acc": test_acc,
                "lr_S": opt_s.param_groups[0]["lr"],
                "lr_G": opt_g.param_groups[0]["lr"],
                "seconds": time.perf_counter() - start,
            }
            history.append(row)
            bar.set_postfix({k: round(row[k], 4) for k in ("loss_S", "loss_G", "val_acc")})
            sums = dict.fromkeys(sums, 0.0)
            n_since = 0
    bar.close()
    student.eval()
    return DataFreeResult(
        student=student,
        generator=gen,
        best_state=best.best_state,
        best_val_acc=best.best_acc if best.best_state is not None else math.nan,
        best_iteration=best.best_step,
        history=history,
        queries_used=ask.sent,
        iterations=it,
        wall_seconds=time.perf_counter() - start,
        cost_per_iteration=cost,
        config=asdict(cfg),
    )


def load_best(student: nn.Module, result: DataFreeResult) -> nn.Module:
    """A copy of ``student`` carrying the best-on-validation weights (the final ones if there was no validation)."""
    model = copy.deepcopy(student)
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
    return model
