"""DFME / MAZE loop: ZO estimator, query accounting, replay bound, determinism, presets, a smoke learning check.

Everything runs on tiny models (1×8×8 images, 5 classes, generator width 4) to stay well under a few seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from msdefense.attacks import (
    DataFreeConfig,
    ReplayBuffer,
    dfme_cifar10,
    dfme_svhn,
    disagreement,
    load_best,
    maze_cifar10,
    misleader_dfme,
    run_datafree,
    to_victim_input,
    zo_gradient,
)
from msdefense.defenses.none import NoDefense
from msdefense.oracle import Oracle
from msdefense.training import accuracy, predict_logits

SHAPE = (1, 8, 8)
K = 5


class CountingVictim(nn.Module):
    """A small differentiable classifier that counts every image it is shown."""

    def __init__(self, seed: int = 123) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(64, K)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(K, 64, generator=g) * 0.5)
            self.fc.bias.zero_()
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(x)
        return self.fc(x.flatten(1))


def tiny_student(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, K))


def tiny_cfg(**kw) -> DataFreeConfig:
    base = dict(
        name="tiny",
        query_budget=10_000,
        batch_size=8,
        grad_m=2,
        d_iter=2,
        nz=8,
        generator_width=4,
        eval_every=5,
        lr_S=0.05,
        lr_G=1e-3,
    )
    base.update(kw)
    return DataFreeConfig(**base)


def run(cfg: DataFreeConfig, victim: nn.Module | None = None, budget: int | None = None, **kw):
    victim = victim or CountingVictim()
    oracle = Oracle(victim, NoDefense(), [0.0], budget=budget)
    res = run_datafree(oracle, tiny_student(), cfg, image_shape=SHAPE, progress=False, **kw)
    return res, oracle, victim


@pytest.mark.parametrize("loss", ["l1", "kl"])
def test_zo_estimate_aligns_with_true_gradient(loss: str) -> None:
    """m = 200 directions in d = 64: mean cosine with the autograd gradient ∂L/∂x_pre must exceed 0.5."""
    torch.manual_seed(0)
    cfg = tiny_cfg(loss=loss, logit_correction="mean" if loss == "l1" else "none")
    victim, student = CountingVictim(), tiny_student()
    student.eval()
    oracle = Oracle(victim, NoDefense(), [0.0])
    x_pre = torch.randn(6, *SHAPE)

    def objective(points: torch.Tensor) -> torch.Tensor:
        x = to_victim_input(points, cfg)
        with torch.no_grad():
            return -disagreement(student(x), oracle(x), cfg)

    m = 200
    rng = torch.Generator().manual_seed(1)
    est, base = zo_gradient(x_pre, objective, m, cfg.grad_epsilon, rng)
    assert oracle.queries_used == 6 * (m + 1)  # every probe and the base points went through the oracle

    xp = x_pre.clone().requires_grad_(True)
    x = to_victim_input(xp, cfg)
    probs = torch.softmax(victim(x), -1)  # white-box, for the test only
    loss_g = (-disagreement(student(x), probs, cfg)).mean()
    (true,) = torch.autograd.grad(loss_g, xp)
    torch.testing.assert_close(base.mean(), loss_g.detach(), atol=1e-5, rtol=1e-5)
    cos = torch.cosine_similarity(est.flatten(1), true.flatten(1), dim=1)
    assert cos.mean() > 0.5, cos
    # the overall scale is that of the batch-mean loss (d/m·Σ with unit directions is unbiased)
    ratio = (est * true).sum() / (true * true).sum()
    assert 0.5 < float(ratio) < 1.5


@pytest.mark.parametrize("maze", [False, True])
def test_budget_never_exceeded_and_every_image_counted(maze: bool) -> None:
    cfg = tiny_cfg(
        reuse_generator_batch=maze,
        replay_size=32 if maze else 0,
        iter_exp=2 if maze else 0,
        loss="kl" if maze else "l1",
    )
    cost = cfg.cost_per_iteration
    assert cost == 8 * (3 + (1 if maze else 2))
    budget = 17 * cost + 13  # not a multiple of the cost per iteration
    res, oracle, victim = run(cfg, budget=budget)
    assert res.iterations == 17
    assert res.queries_used == oracle.queries_used == victim.images_seen == 17 * cost
    assert oracle.queries_left < cost
    assert res.history[-1]["queries_used"] == res.queries_used


def test_config_budget_smaller_than_oracle_budget_and_zero_iterations() -> None:
    cfg = tiny_cfg(query_budget=3 * 40 + 1)
    res, oracle, _ = run(cfg, budget=10_000)
    assert res.iterations == 3 and oracle.queries_used == 120
    res, oracle, victim = run(cfg, budget=39)
    assert res.iterations == 0 and oracle.queries_used == 0 and victim.images_seen == 0


def test_replay_buffer_bound_and_fifo() -> None:
    buf = ReplayBuffer(10)
    for i in range(7):
        buf.add(torch.full((4, 1, 2, 2), float(i)), torch.full((4, K), float(i)))
        assert len(buf) <= 10
    assert len(buf) == 10
    assert sorted(buf.x[:, 0, 0, 0].tolist()) == [4.0, 4.0, 5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0]
    xs, ps = buf.sample(16, torch.Generator().manual_seed(0))
    assert xs.shape == (16, 1, 2, 2) and (xs[:, 0, 0, 0] >= 4).all() and torch.equal(xs[:, 0, 0, 0], ps[:, 0])


def test_replay_buffer_bounded_in_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    orig_add = ReplayBuffer.add

    def add(self, x, p):
        orig_add(self, x, p)
        sizes.append(len(self))

    monkeypatch.setattr(ReplayBuffer, "add", add)
    cfg = tiny_cfg(replay_size=20, iter_exp=2, reuse_generator_batch=True, loss="kl", query_budget=30 * 32)
    res, _, _ = run(cfg)
    assert res.iterations == 30 and len(sizes) == 30
    assert max(sizes) == 20 and sizes[-1] == 20


def test_same_seed_same_run_other_seed_differs() -> None:
    cfg = tiny_cfg(query_budget=12 * 32, replay_size=16, iter_exp=1, reuse_generator_batch=True)
    val = (torch.tanh(torch.randn(32, *SHAPE)), torch.randint(0, K, (32,)))
    a, _, _ = run(cfg, val_data=val)
    b, _, _ = run(cfg, val_data=val)
    c, _, _ = run(cfg.with_(seed=1), val_data=val)
    drop = ("seconds",)
    rows = lambda r: [{k: v for k, v in row.items() if k not in drop} for row in r.history]  # noqa: E731
    assert rows(a) == rows(b)
    for (ka, va), vb in zip(a.student.state_dict().items(), b.student.state_dict().values(), strict=True):
        assert torch.equal(va, vb), ka
    assert rows(a) != rows(c)
    assert any(
        not torch.equal(va, vc)
        for va, vc in zip(a.student.state_dict().values(), c.student.state_dict().values(), strict=True)
    )


def test_student_learns_the_victim_and_best_is_selected_on_validation() -> None:
    victim = CountingVictim()
    g = torch.Generator().manual_seed(7)
    xv = torch.tanh(2 * torch.randn(256, *SHAPE, generator=g))
    with torch.no_grad():
        yv = victim(xv).argmax(-1)
    cfg = tiny_cfg(query_budget=150 * 40, batch_size=8, eval_every=15, schedule="none")
    res, _, _ = run(cfg, victim=victim, val_data=(xv, yv))
    first, last = res.history[0], res.history[-1]
    assert res.iterations == 150 and len(res.history) == 10
    assert last["loss_S"] < 0.6 * first["loss_S"], res.history
    best = max(res.history, key=lambda r: r["val_acc"])
    assert res.best_val_acc == best["val_acc"] and res.best_iteration == best["iteration"]
    assert res.best_val_acc > max(0.6, first["val_acc"] + 0.2), res.history  # chance is 0.2
    selected = load_best(res.student, res)
    assert accuracy(predict_logits(selected, xv, torch.device("cpu"), amp=False), yv) == res.best_val_acc
    assert all(math.isfinite(r["loss_G"]) for r in res.history)


def test_generator_is_updated() -> None:
    cfg = tiny_cfg(query_budget=2 * 40)
    torch.manual_seed(0)
    from msdefense.models import build_generator

    gen = build_generator("dfme", cfg.nz, 1, 8, ngf=4)
    before = [p.detach().clone() for p in gen.parameters()]
    res, _, _ = run(cfg, generator=gen)
    assert any(not torch.equal(p0, p1) for p0, p1 in zip(before, res.generator.parameters(), strict=True))


def test_input_range_normalise() -> None:
    cfg = tiny_cfg(input_range="tanh_to_unit_then_normalise", input_mean=(0.25,), input_std=(0.5,))
    x_pre = torch.tensor([-50.0, 0.0, 50.0]).view(1, 1, 1, 3)
    torch.testing.assert_close(to_victim_input(x_pre, cfg).flatten(), torch.tensor([-0.5, 0.5, 1.5]))
    torch.testing.assert_close(to_victim_input(x_pre, tiny_cfg()).flatten(), torch.tensor([-1.0, 0.0, 1.0]))


def test_losses_take_log_of_probabilities() -> None:
    p = torch.tensor([[0.7, 0.2, 0.1]])
    t = torch.log(p) - torch.log(p).mean()
    torch.testing.assert_close(disagreement(t, p, tiny_cfg()), torch.zeros(1), atol=1e-6, rtol=0)
    kl = tiny_cfg(loss="kl")
    torch.testing.assert_close(disagreement(torch.log(p), p, kl), torch.zeros(1), atol=1e-6, rtol=0)
    assert float(disagreement(torch.zeros(1, 3), p, kl)) > 0


def test_log_floor_bounds_the_l1_target_from_below() -> None:
    """A probability far below the floor enters the ℓ1 target as about log(log_floor): the default
    floor 1e-12 reads e^−60 as about −27.6, float32's smallest normal keeps the real −60."""
    logits = torch.tensor([[0.0, -20.0, -60.0]])
    p = torch.softmax(logits, -1)
    exact = torch.log_softmax(logits, -1)
    exact = exact - exact.mean()
    low = tiny_cfg(log_floor=float(torch.finfo(torch.float32).tiny))
    torch.testing.assert_close(disagreement(exact, p, low), torch.zeros(1), atol=1e-4, rtol=0)
    assert float(disagreement(exact, p, tiny_cfg())) > 5  # −60 read as ≈ −27.6
    with pytest.raises(ValueError, match="log_floor"):
        tiny_cfg(log_floor=0.0)


def test_probabilities_as_logits_view_is_the_forks_handling() -> None:
    """``oracle_view: probabilities_as_logits`` reads p as logits (the MISLEADER DFME fork): the
    ℓ1 target is p − 1/K after the mean correction, the KL target softmax(p)."""
    p = torch.tensor([[0.7, 0.2, 0.1]])
    l1 = tiny_cfg(oracle_view="probabilities_as_logits")
    torch.testing.assert_close(disagreement(p - 1 / 3, p, l1), torch.zeros(1), atol=1e-6, rtol=0)
    s = torch.tensor([[1.0, -1.0, 0.5]])
    expected = (s - (p - 1 / 3)).abs().mean(-1)
    torch.testing.assert_close(disagreement(s, p, l1), expected)
    kl = tiny_cfg(loss="kl", oracle_view="probabilities_as_logits")
    q = torch.softmax(p, -1)
    expected = (q * (torch.log(q) - torch.log_softmax(s, -1))).sum(-1)
    torch.testing.assert_close(disagreement(s, p, kl), expected)
    # the fork's target is nearly uniform: a student matching p itself is far from it
    assert float(disagreement(torch.log(p), p, kl)) > float(disagreement(torch.log(q), p, kl)) + 0.1
    with pytest.raises(ValueError, match="oracle_view"):
        tiny_cfg(oracle_view="logits")


def test_presets_carry_reference_numbers() -> None:
    d = dfme_cifar10()
    assert (d.query_budget, d.batch_size, d.grad_m, d.lr_S, d.lr_G) == (20_000_000, 256, 1, 0.1, 1e-4)
    assert (d.loss, d.logit_correction, d.generator_optimizer, d.schedule) == (
        "l1",
        "mean",
        "adam",
        "multistep",
    )
    assert (d.milestones, d.gamma, d.nz, d.grad_epsilon, d.d_iter, d.g_iter) == (
        (0.1, 0.3, 0.5),
        0.3,
        256,
        1e-3,
        5,
        1,
    )
    assert d.cost_per_iteration == 1792 and d.iterations_for(d.query_budget) == 11_160
    s = dfme_svhn()
    assert (s.query_budget, s.lr_G, s.milestones, s.cost_per_iteration) == (2_000_000, 5e-5, (0.5, 0.8), 1792)
    mi = misleader_dfme()
    assert (mi.batch_size, mi.lr_G, mi.cost_per_iteration, mi.query_budget) == (
        2048,
        1e-5,
        14_336,
        20_000_000,
    )
    mz = maze_cifar10()
    assert (mz.query_budget, mz.batch_size, mz.grad_m, mz.loss, mz.generator_optimizer) == (
        30_000_000,
        128,
        10,
        "kl",
        "sgd",
    )
    assert (mz.lr_G, mz.generator_momentum, mz.generator_weight_decay, mz.lr_S) == (1e-4, 0.9, 5e-4, 0.1)
    assert (mz.schedule, mz.iter_exp, mz.reuse_generator_batch, mz.nz, mz.generator) == (
        "cosine",
        10,
        True,
        100,
        "maze",
    )
    assert mz.replay_size > 0 and mz.cost_per_iteration == 1920 == 128 * (4 + 11)
    assert mz.iterations_for(mz.query_budget) == 15_625
    with pytest.raises(ValueError, match="loss"):
        DataFreeConfig(loss="mse")  # type: ignore[arg-type]
