"""The defense-aware attacker's restorers of one sweep: fitted one value at a time (the baseline,
``fit_restorer`` per value) against all values in one stacked model (``fit_restorers``, what
``restorers`` does), timed back to back in this process at the default's settings (3,000 Adam
steps, width 128, the default's held-out digits: 377 pairs). Prints seconds and the ratio.

    .venv/bin/python benchmarks/bench_restorers.py [--values 4] [--steps 3000] [--threads 1]
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    main()
