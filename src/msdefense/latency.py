"""Per-query latency of each defense next to the undefended forward pass.

The claim under test is Khaled et al. 2023 (ICMLA): DCP answers about 37× faster than the SOTA
defenses. Their ``get_queries.py`` timed each batch once with ``time.time()``, without warm-up,
and divided by the number of ε values computed. Here a *deployed* oracle is timed: one victim
forward pass plus the defense at one parameter value, at batch sizes 1 and 64, after warm-up,
with the undefended pass timed in the same process and interleaved with the defended one (so
machine drift affects both), reporting medians. Timing does not depend on weight values, so
auxiliary models (surrogates, misinformation model) are built with random weights of the
victim's architecture.

A median alone hides how noisy it is (another process on the machine can move a ratio by tens of
percent). Each row therefore reports a 95% bootstrap interval of its ratio over the interleaved
(undefended, defended) pairs and the interquartile range of the defended time; rounds of
``repeats`` pairs are added until the interval's half-width is within ``target_halfwidth`` of the
ratio or the row has taken ``max_seconds``. A row that stops wider is marked ``reliable = False``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from .defenses import build_defense, required_aux_models
from .models import build_model
from .oracle import Oracle, victim_posteriors
from .training import prepare_model


def _timed(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, device: torch.device) -> float:
    """Seconds for ``fn(x)``, synchronising CUDA before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


BOOTSTRAP_RESAMPLES = 2000
MIN_PAIRS = 10  # fewer pairs never make a row reliable


def ratio_interval(defended: np.ndarray, plain: np.ndarray, seed: int) -> tuple[float, float, float]:
    """median(defended) / median(plain) and its 95% percentile-bootstrap interval, resampling the
    interleaved pairs together (so drift that hits both sides of a pair cancels)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(plain), size=(BOOTSTRAP_RESAMPLES, len(plain)))
    ratios = np.median(defended[idx], axis=1) / np.median(plain[idx], axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(np.median(defended) / np.median(plain)), float(low), float(high)


def timed_pairs(
    undefended: Callable[[torch.Tensor], Any],
    defended: Callable[[torch.Tensor], Any],
    x: torch.Tensor,
    *,
    device: torch.device,
    repeats: int,
    target_halfwidth: float,
    max_seconds: float,
    seed: int,
) -> dict[str, Any]:
    """Interleaved timings in rounds of ``repeats`` pairs until the ratio's interval is narrow
    enough or ``max_seconds`` have passed; the row's timing fields (ms per call, not per query)."""
    plain: list[float] = []
    guarded: list[float] = []
    start = time.perf_counter()
    while True:
        for _ in range(repeats):
            plain.append(_timed(undefended, x, device))
            guarded.append(_timed(defended, x, device))
            if len(plain) >= MIN_PAIRS and time.perf_counter() - start >= max_seconds:
                break  # max_seconds bounds a round too (a huge ``repeats``)
        p, d = np.array(plain), np.array(guarded)
        ratio, low, high = ratio_interval(d, p, seed)
        # an interval from a handful of pairs is too optimistic to call a row reliable
        narrow = len(plain) >= MIN_PAIRS and max(ratio - low, high - ratio) <= target_halfwidth * ratio
        if narrow or time.perf_counter() - start >= max_seconds:
            break
    q1, q3 = np.percentile(d, [25, 75])
    return {
        "ms_call": 1000 * float(np.median(d)),
        "ms_call_undefended": 1000 * float(np.median(p)),
        "ms_call_iqr": 1000 * float(q3 - q1),
        "overhead_vs_none": ratio,
        "overhead_ci_low": low,
        "overhead_ci_high": high,
        "repeats": len(plain),
        "reliable": bool(narrow),
    }


@dataclass(frozen=True, kw_only=True)
class LatencySettings:
    """How a latency row is measured (the config's ``latency`` section; defaults: its schema)."""

    batch_sizes: tuple[int, ...]
    warmup: int
    repeats: int
    target_halfwidth: float
    max_seconds: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> LatencySettings:
        return cls(
            batch_sizes=tuple(int(b) for b in cfg["batch_sizes"]),
            warmup=int(cfg["warmup"]),
            repeats=int(cfg["repeats"]),
            target_halfwidth=float(cfg["target_halfwidth"]),
            max_seconds=float(cfg["max_seconds"]),
        )


def random_aux_models(
    names: tuple[str, ...], arch: str, num_classes: int, in_channels: int, device: torch.device
) -> dict[str, nn.Module]:
    """Auxiliary models with random weights of the victim's architecture (timing only), in the
    layout the workflow's stored models load in."""
    return {n: prepare_model(build_model(arch, num_classes, in_channels), device).eval() for n in names}


def measure_defenses(
    model: nn.Module,
    *,
    arch: str,
    num_classes: int,
    in_channels: int,
    image_size: int,
    dataset: str,
    defenses: Mapping[str, Mapping[str, Any]],
    settings: LatencySettings,
    device: torch.device,
    seed: int,
) -> list[dict[str, Any]]:
    """Rows ``{defense, method, param, batch_size, ms_per_query, ms_undefended, overhead_vs_none,
    overhead_ci_low, overhead_ci_high, ms_per_query_iqr, repeats, reliable}``.

    ``model`` is the victim (fp32, int8 or ensemble). Each defense answers at the largest value of
    its sweep (the cost of every method here is independent of the value, except that ε = 0 may
    short-cut). How rows are timed: this module's docstring; deviations: docs/deviations.md (Defenses).
    """
    victim = model.to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for batch_size in settings.batch_sizes:
        x = torch.randn(batch_size, in_channels, image_size, image_size, generator=gen).to(device)
        for name, cfg in defenses.items():
            aux = random_aux_models(required_aux_models(cfg), arch, num_classes, in_channels, device)
            defense = build_defense(cfg, dataset, aux, seed)
            param = max(float(p) for p in cfg["params"])
            oracle = Oracle(victim, defense, [param])
            undefended = partial(victim_posteriors, victim)
            for _ in range(settings.warmup):
                undefended(x)
                oracle(x)
            timing = timed_pairs(
                undefended,
                oracle,
                x,
                device=device,
                repeats=settings.repeats,
                target_halfwidth=settings.target_halfwidth,
                max_seconds=settings.max_seconds,
                seed=seed,
            )
            rows.append(
                {
                    "defense": name,
                    "method": cfg["method"],
                    "param": param,
                    "batch_size": batch_size,
                    "ms_per_query": timing.pop("ms_call") / batch_size,
                    "ms_undefended": timing.pop("ms_call_undefended") / batch_size,
                    "ms_per_query_iqr": timing.pop("ms_call_iqr") / batch_size,
                    **timing,
                }
            )
    return rows
