"""The defense-aware attacker's restorers of one sweep: fitted one value at a time (the baseline,
``fit_restorer`` per value) against all values in one stacked model (``fit_restorers``, what
``restorers`` does), timed back to back in this process at the default's settings (3,000 Adam
steps, width 128, 377 pairs as the default's held-out digits). Prints seconds and the ratio.

``--trajectory``: instead, the restorers the defense-aware attacker fits on the default's held-out
digits (its own shadows, ``restorers``; needs ``resources/digits``, which ``make run`` prepares)
for every defense of config/config.yaml at every swept value, over the full ``restorer_steps``
without the plateau rule: per value, the step of the lowest held-out loss and the loss there and
at 1,000 and 2,000 steps (the evidence for ``restorer_patience``, docs/methods.md).

    .venv/bin/python benchmarks/bench_restorers.py [--values 4] [--steps 3000] [--threads 1]
    .venv/bin/python benchmarks/bench_restorers.py --trajectory
"""

from __future__ import annotations

import argparse
import time

import torch

from msdefense.attacks.restorer import fit_restorer, fit_restorers
from msdefense.defenses import build_defense


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=4, help="sweep values (DCP's in the default: 4)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--pairs", type=int, default=377)
    parser.add_argument("--threads", type=int, default=1, help="as a workflow job (threads: 1)")
    parser.add_argument("--trajectory", action="store_true", help="held-out losses on the default's digits")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.trajectory:
        trajectory(args.steps)
        return
    g = torch.Generator().manual_seed(0)
    clean = torch.softmax(torch.randn(args.pairs, 10, generator=g) * 4, -1)
    betas = torch.linspace(0.4, 1.5, args.values).tolist()
    defended = build_defense({"method": "DCP"}, "digits").perturb(None, clean, betas)
    seeds = list(range(args.values))
    options = {"steps": args.steps, "width": 128, "lr": 1e-3}
    start = time.perf_counter()
    for e, seed in enumerate(seeds):
        fit_restorer(defended[e], clean, seed=seed, **options)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    fit_restorers(defended, clean, seeds=seeds, **options)
    stacked = time.perf_counter() - start
    print(f"{args.values} values x {args.steps} steps, {args.threads} thread(s)")
    print(f"one value at a time: {alone:.2f} s")
    print(f"stacked:             {stacked:.2f} s")
    print(f"speed-up: {alone / stacked:.2f}x")


def trajectory(steps: int) -> None:
    """Per defense and value of the default config: where the held-out loss is lowest."""
    from msdefense.attacks import restorer
    from msdefense.attacks.defense_aware import DefenseAwareConfig, restorers
    from msdefense.preflight import load_checked
    from msdefense.stages.requests import VictimData

    cfg = load_checked("config/config.yaml", "config/schema.yaml")
    data = VictimData("digits", cfg["data"])
    transfer = cfg["transfer_sets"]["digits_heldout"]
    images, plain = data.transfer(transfer, augment=True), data.transfer(transfer, augment=False)
    aware = DefenseAwareConfig.from_config(
        {**cfg["knockoff"]["defense_aware"], "restorer_steps": steps, "restorer_patience": None}
    )
    losses: list[list[float]] = []
    soft_ce = restorer._soft_ce

    def recording(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        value = soft_ce(logits, targets)
        if not torch.is_grad_enabled():  # the held-out checks
            losses.append(value.tolist())
        return value

    restorer._soft_ce = recording
    print("defense value best_step loss_best loss_1000 loss_2000")
    for name, entry in cfg["defenses"].items():
        if entry["method"] == "None":
            continue
        losses.clear()
        params = [float(p) for p in entry["params"]]
        restorers(
            entry, params, dataset="digits", images=images, plain=plain, cfg=aware, arch="lenet5",
            classes=10, in_channels=1, device=torch.device("cpu"), seed=0,
        )  # fmt: skip
        table = torch.tensor(losses)  # [checks, values], one check every 100 steps
        for e, p in enumerate(params):
            best = int(table[:, e].argmin())
            at = {s: float(table[min(s // 100, len(table)) - 1, e]) for s in (1000, 2000)}
            print(
                f"{name} {p:g} {100 * (best + 1)} {float(table[best, e]):.4f} {at[1000]:.4f} {at[2000]:.4f}"
            )


if __name__ == "__main__":
    main()
