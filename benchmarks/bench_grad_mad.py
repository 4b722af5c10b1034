"""Benchmark: vectorised GRAD / MAD (msdefense.defenses) against straightforward per-sample loops.

What it measures (printed at the top of every run): a CIFAR ResNet-20 victim and a ResNet-20
surrogate (random weights, eval mode), a batch of random 3×32×32 images, the ε sweep
0.0, 0.1, …, 1.0 (11 values), ``torch.set_num_threads`` threads (2 by default), CPU. For each method,
the wall-clock time of answering the batch for the whole sweep *including the victim pass*,
reported as ms per query (batch time / batch size; not divided by the number of ε values), as the
median over repeats taken round-robin across methods (so load drift on a shared machine hits all
rows alike), with the ratio of the fastest runs and of process CPU times beside it. Ratios are
against the undefended victim pass. The vectorised methods run through ``Oracle.answer_sweep``
(victim pass under no_grad, then the defense), exactly as the workflow calls them. The loop
versions are slow, so each is timed on its equality-check call (plus ``--loop-repeats − 1`` more).

The loop versions are kept here, not in the package. They follow the original code's structure
(``method_gradient_redirection`` and ``method_orekondy`` in ``df/defenses.py`` of
KacemKhaled/defending-extraction, adapted from mmazeika/model-stealing-defenses; the original MAD is
``bb_mad.py`` of tribhuvanesh/prediction-poisoning; docs/methods.md), after one batched victim pass:

- GRAD: per-class scores by double backprop (``create_graph=True`` gradient of the batch
  log-likelihood over all surrogate parameters, then ``∂⟨g(ỹ), t⟩/∂ỹ``), then the greedy per
  example and per ε in Python, finished with ``softmax(log(clip(ỹ, 1e-15, 1)))`` as the original;
- MAD simplified (paper code): per example one batch-1 surrogate forward and K + 1 backward passes
  to the fc weight and bias (``G^T y`` and every ``G^T e_k``), the cosine scan (ties → last), then
  ``α = clamp(ε / ‖y − e_k‖₁, 0, 1)`` per ε. (The paper code also re-ran the surrogate forward for
  each of the K + 1 gradients and the victim per example; the loop here does not, so the speed-ups
  printed are conservative.)
- MAD original (bb_mad.py, oracle 'extreme', objmax): per example K backward passes to the fc
  weight, ``‖û_k − v̂‖²`` scan (ties → first), then per ε alternating L1-ball / simplex projections
  of single vectors (≤ 100 rounds, tolerance 1e-4) and the final line search toward y.

The script asserts that every vectorised method equals its loop version within 1e-5 (max abs).
Usage: ``python benchmarks/bench_grad_mad.py [--batch 64] [--repeats 7] [--loop-repeats 1] [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from msdefense.defenses.grad import GRAD
from msdefense.defenses.mad import MAD, last_linear
from msdefense.models import build_model
from msdefense.oracle import Oracle, victim_posteriors

EPS = [round(0.1 * i, 1) for i in range(11)]
TOLERANCE = 1e-5


# ----------------------------------------------------------------------------- loop versions


def grad_loop(victim: nn.Module, surrogate: nn.Module, x: Tensor, eps: list[float], target: str) -> Tensor:
    """GRAD as the original: double backprop for the scores, then a Python greedy per example and ε."""
    y = victim_posteriors(victim, x)
    params = list(surrogate.parameters())
    with torch.enable_grad():
        y_tilde = y.clone().requires_grad_()
        log_probs = torch.log_softmax(surrogate(x), dim=1)
        grads = torch.autograd.grad((y_tilde * log_probs).sum(1).mean(0), params, create_graph=True)
        g = torch.cat([gr.reshape(-1) for gr in grads])
        t = -torch.ones_like(g) if target == "all_ones" else g.detach()
        d = torch.autograd.grad((g * t).sum(), y_tilde)[0]
    out = torch.empty(len(eps), *y.shape)
    for i in range(len(x)):
        for e, budget in enumerate(eps):
            order = torch.argsort(d[i])  # ascending: order[0] receives, order[-1], order[-2], ... give
            row = y[i].clone()
            can_give = min(1 - row[order[0]].item(), budget / 2)
            found, pointer = 0.0, len(order) - 1
            while found < can_give and pointer > 0:
                here = row[order[pointer]].item()
                if found + here <= can_give:
                    row[order[pointer]] -= here
                    found += here
                else:
                    row[order[pointer]] -= can_give - found
                    found = can_give
                pointer -= 1
            row[order[0]] += found
            out[e, i] = torch.softmax(torch.log(row.clamp(1e-15, 1)), dim=0)
    return out


def _fc_gradient(loss: Tensor, params: list[Tensor]) -> Tensor:
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)])


def mad_simplified_loop(victim: nn.Module, surrogate: nn.Module, x: Tensor, eps: list[float]) -> Tensor:
    """Paper-code MAD: per example K + 1 fc backward passes, cosine scan, clamped line search."""
    y = victim_posteriors(victim, x)
    fc = last_linear(surrogate)
    params = [fc.weight, fc.bias]
    k = y.shape[1]
    out = torch.empty(len(eps), *y.shape)
    for i in range(len(x)):
        with torch.enable_grad():
            log_p = torch.log_softmax(surrogate(x[i : i + 1]), dim=1)
            v = _fc_gradient((y[i : i + 1] * log_p).sum(1).mean(0), params)
            best, best_obj = 0, -0.1
            for c in range(k):
                u = _fc_gradient(log_p[0, c], params)
                objective = 1 - ((u * v).sum() / (u.norm() * v.norm())).item()
                if objective >= best_obj:
                    best, best_obj = c, objective
        one_hot = torch.zeros(k)
        one_hot[best] = 1
        dist = (y[i] - one_hot).abs().sum()
        for e, budget in enumerate(eps):
            alpha = min(max(budget / dist.item(), 0.0), 1.0) if dist > 0 else 0.0
            out[e, i] = y[i] * (1 - alpha) + one_hot * alpha
    return out


def _project_simplex_1d(v: Tensor) -> Tensor:
    u = torch.sort(v, descending=True).values
    css = torch.cumsum(u, 0)
    rho = 1
    for j in range(1, len(u) + 1):
        if u[j - 1] - (css[j - 1] - 1) / j > 0:
            rho = j
    theta = (css[rho - 1] - 1) / rho
    return (v - theta).clamp(min=0)


def _project_l1_ball_1d(z: Tensor, radius: float) -> Tensor:
    if z.abs().sum() <= radius:
        return z
    a = z.abs()
    u = torch.sort(a, descending=True).values
    css = torch.cumsum(u, 0)
    rho = 1
    for j in range(1, len(u) + 1):
        if u[j - 1] - (css[j - 1] - radius) / j > 0:
            rho = j
    theta = (css[rho - 1] - radius) / rho
    return z.sign() * (a - theta).clamp(min=0)


def mad_original_loop(victim: nn.Module, surrogate: nn.Module, x: Tensor, eps: list[float]) -> Tensor:
    """bb_mad.py MAD (extreme oracle, objmax): per example K fc-weight backward passes, projections."""
    y = victim_posteriors(victim, x)
    fc = last_linear(surrogate)
    k = y.shape[1]
    out = torch.empty(len(eps), *y.shape)
    for i in range(len(x)):
        with torch.enable_grad():
            nll = -torch.log_softmax(surrogate(x[i : i + 1]), dim=1).mean(0)
            jac = torch.stack([_fc_gradient(nll[c], [fc.weight]) for c in range(k)])  # [K, D]
        v = jac.T @ y[i]
        v = v / v.norm()
        best, best_val = -1, -1.0
        for c in range(k):
            u = jac[c] / jac[c].norm()
            value = ((u - v).norm() ** 2).item()
            if value > best_val:
                best, best_val = c, value
        target = torch.zeros(k)
        target[best] = 1
        for e, budget in enumerate(eps):
            if budget == 0:
                out[e, i] = y[i]
                continue
            current = target
            for _ in range(100):
                current = _project_simplex_1d(y[i] + _project_l1_ball_1d(current - y[i], budget))
                if (current - y[i]).abs().sum() - budget <= 1e-4:
                    break
            dist = (current - y[i]).abs().sum()
            if dist > budget:
                current = y[i] + budget / dist * (current - y[i])
            out[e, i] = current
    return out


# ----------------------------------------------------------------------------- harness


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of the vectorised methods")
    parser.add_argument("--loop-repeats", type=int, default=1, help="timed repeats of the loop versions")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 loop repeat, no extra warm-up")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.loop_repeats, args.warmup = 3, 1, 1

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    victim = build_model("resnet20", 10, 3).eval()
    surrogate = build_model("resnet20", 10, 3).eval()
    x = torch.randn(args.batch, 3, 32, 32)
    n_params = sum(p.numel() for p in surrogate.parameters())

    print(__doc__.split("The loop versions")[0].strip())
    print(
        f"\nsetup: batch {args.batch}, {len(EPS)} ε values {EPS[0]}..{EPS[-1]}, {args.threads} threads, "
        f"torch {torch.__version__}, ResNet-20 ({n_params:,} surrogate parameters), "
        f"{args.repeats} repeats (loops {args.loop_repeats}), {args.warmup} warm-up\n"
    )

    ours: dict[str, Callable[[], Tensor]] = {
        "GRAD all_ones": Oracle(victim, GRAD(surrogate, "all_ones"), EPS).answer_sweep,
        "GRAD min_ip": Oracle(victim, GRAD(surrogate, "min_ip"), EPS).answer_sweep,
        "MAD simplified": Oracle(victim, MAD(surrogate, "simplified"), EPS).answer_sweep,
        "MAD original": Oracle(victim, MAD(surrogate, "original"), EPS).answer_sweep,
    }
    loops: dict[str, Callable[[], Tensor]] = {
        "GRAD all_ones": lambda: grad_loop(victim, surrogate, x, EPS, "all_ones"),
        "GRAD min_ip": lambda: grad_loop(victim, surrogate, x, EPS, "min_ip"),
        "MAD simplified": lambda: mad_simplified_loop(victim, surrogate, x, EPS),
        "MAD original": lambda: mad_original_loop(victim, surrogate, x, EPS),
    }

    # Equality first. The loop versions are timed on this call (and on loop_repeats − 1 more);
    # the vectorised ones are warmed up by it.
    samples: dict[str, list[tuple[float, float]]] = {"undefended": []}
    diffs = {}
    for name in ours:
        a = ours[name](x)
        wall, cpu = time.perf_counter(), time.process_time()
        b = loops[name]()
        samples[name], samples[f"{name} (loop)"] = (
            [],
            [(time.perf_counter() - wall, time.process_time() - cpu)],
        )
        diffs[name] = (a - b).abs().max().item()
        print(f"check {name:<15} max |ours − loop| = {diffs[name]:.2e}", flush=True)
    bad = {name: diff for name, diff in diffs.items() if not diff <= TOLERANCE}
    assert not bad, f"outputs differ from the loop versions by more than {TOLERANCE}: {bad}"

    jobs: list[tuple[str, Callable[[], object], int]] = [
        ("undefended", lambda: victim_posteriors(victim, x), args.repeats)
    ]
    for name in ours:
        jobs.append((name, lambda f=ours[name]: f(x), args.repeats))
        jobs.append((f"{name} (loop)", loops[name], args.loop_repeats - 1))
    for _ in range(args.warmup):
        for _, fn, reps in jobs:
            if reps == args.repeats:
                fn()
    for r in range(max(args.repeats, args.loop_repeats - 1)):
        for name, fn, reps in jobs:
            if r < reps:
                samples[name].append(timed(fn))
        print(f"  round {r + 1} of {args.repeats} done", flush=True)

    def per_query(name: str, which: int, best: bool = False) -> float:
        values = [s[which] for s in samples[name]]
        return 1000 * (min(values) if best else statistics.median(values)) / args.batch

    base, base_best, base_cpu = (
        per_query("undefended", 0),
        per_query("undefended", 0, True),
        per_query("undefended", 1),
    )
    header = (
        f"{'method':<26}{'ms/query':>10}{'× undef.':>10}{'× (best)':>10}{'× (cpu)':>9}"
        f"{'speed-up vs loop':>18}{'max |Δ| vs loop':>17}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    print(f"{'undefended victim pass':<26}{base:>10.3f}{1:>10.2f}{1:>10.2f}{1:>9.2f}")
    for name in ours:
        for label in (name, f"{name} (loop)"):
            wall, best, cpu = per_query(label, 0), per_query(label, 0, True), per_query(label, 1)
            extra = ""
            if label == name:
                extra = f"{per_query(f'{name} (loop)', 0) / wall:>17.1f}×{diffs[name]:>17.1e}"
            print(
                f"{label:<26}{wall:>10.3f}{wall / base:>10.2f}{best / base_best:>10.2f}{cpu / base_cpu:>9.2f}{extra}"
            )
    print(
        "\nms/query = median batch time / batch size for the whole 11-value ε sweep including the victim pass."
        "\n× undef. = ratio of medians to the undefended victim pass; × (best) = ratio of the fastest runs;"
        "\n× (cpu) = ratio of median process CPU times. Loop versions: "
        f"{args.loop_repeats} timed run(s) each, the first being the equality check."
    )


if __name__ == "__main__":
    main()
