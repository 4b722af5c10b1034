"""Per-query latency of each defense next to the undefended forward pass.

The claim under test is Khaled et al. 2023 (ICMLA): DCP answers about 37× faster than the SOTA
defenses. Their ``get_queries.py`` timed each batch once with ``time.time()``, without warm-up,
and divided by the number of ε values computed. Here a *deployed* oracle is timed: one victim
forward pass plus the defense at one parameter value, at batch sizes 1 and 64, after warm-up,
with the undefended pass timed in the same process and interleaved with the defended one (so
machine drift affects both), reporting medians. Timing does not depend on weight values, so
auxiliary models (surrogates, misinformation model) are built with random weights of the
victim's architecture.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import nn

from .defenses import build_defense, required_aux_models
from .models import build_model
from .oracle import Oracle, victim_posteriors


def _timed(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, device: torch.device) -> float:
    """Seconds for ``fn(x)``, synchronising CUDA before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def random_aux_models(
    names: tuple[str, ...], arch: str, num_classes: int, in_channels: int, device: torch.device
) -> dict[str, nn.Module]:
    """Auxiliary models with random weights of the victim's architecture (timing only)."""
    return {n: build_model(arch, num_classes, in_channels).to(device).eval() for n in names}


def measure_defenses(
    model: nn.Module,
    *,
    arch: str,
    num_classes: int,
    in_channels: int,
    image_size: int,
    dataset: str,
    defenses: Mapping[str, Mapping[str, Any]],
    batch_sizes: list[int],
    warmup: int,
    repeats: int,
    device: torch.device,
    seed: int,
) -> list[dict[str, Any]]:
    """Rows ``{defense, method, param, batch_size, ms_per_query, ms_undefended, overhead_vs_none}``.

    ``model`` is the victim (fp32, int8 or ensemble). Each defense answers at the largest value of
    its sweep (the cost of every method here is independent of the value, except that ε = 0 may
    short-cut). Method and settings: docs/methods.md; deviations: docs/deviations.md (Defenses).
    """
    victim = model.to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for batch_size in batch_sizes:
        x = torch.randn(batch_size, in_channels, image_size, image_size, generator=gen).to(device)
        for name, cfg in defenses.items():
            aux = random_aux_models(required_aux_models(cfg), arch, num_classes, in_channels, device)
            defense = build_defense(cfg, dataset, aux, seed)
            param = max(float(p) for p in cfg["params"])
            oracle = Oracle(victim, defense, [param])
            undefended = partial(victim_posteriors, victim)
            for _ in range(warmup):
                undefended(x)
                oracle(x)
            plain, defended = [], []
            for _ in range(repeats):
                plain.append(_timed(undefended, x, device))
                defended.append(_timed(oracle, x, device))
            ms_plain = 1000 * statistics.median(plain) / batch_size
            ms_def = 1000 * statistics.median(defended) / batch_size
            rows.append(
                {
                    "defense": name,
                    "method": cfg["method"],
                    "param": param,
                    "batch_size": batch_size,
                    "ms_per_query": ms_def,
                    "ms_undefended": ms_plain,
                    "overhead_vs_none": ms_def / ms_plain,
                    "repeats": repeats,
                }
            )
    return rows
