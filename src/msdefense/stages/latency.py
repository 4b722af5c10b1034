"""Stage of ``measure_latency``: ms per query of every defense next to the undefended pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..io import save_json
from ..models import build_model
from ..seeding import derive_seed
from ..training import prepare_model
from .context import stage


@dataclass(frozen=True, kw_only=True)
class LatencyRequest:
    """A trained victim (``in_victim``: one path) or a reference architecture with random weights
    (``reference``: arch, num_classes, in_channels, image_size)."""

    victim: str
    seed: int
    device: str = "auto"
    reference: Mapping[str, Any] | None = None
    defenses: Mapping[str, Mapping[str, Any]]
    latency: Mapping[str, Any]
    in_victim: Sequence[str] = ()
    out_latency: str


def measure_latency(request: LatencyRequest) -> list[dict[str, Any]]:
    """Latency rows (batch size × defense) for one victim, written as one JSON list."""
    from .. import layout
    from ..data import get_dataset_spec
    from ..latency import LatencySettings, measure_defenses
    from ..victims import read_victim

    r = request
    with stage(r.device, derive_seed(r.seed, "latency", r.victim)) as ctx:
        if r.in_victim:
            model, info = read_victim(r.in_victim[0], ctx.device, pattern=layout.VICTIM_MODEL)
            arch, dataset = info.arch, info.dataset  # arch: the defenses' surrogate architecture
            spec = get_dataset_spec(dataset)
            num_classes, in_channels, image_size = spec.num_classes, spec.in_channels, spec.image_size
        elif r.reference is not None:
            arch, dataset = r.reference["arch"], r.reference.get("dataset", "reference")
            num_classes, in_channels = int(r.reference["num_classes"]), int(r.reference["in_channels"])
            image_size = int(r.reference["image_size"])
            model = prepare_model(build_model(arch, num_classes, in_channels), ctx.device)
        else:
            raise ValueError(
                f"measure_latency of {r.victim!r} needs a trained victim or a reference architecture"
            )
        rows = measure_defenses(
            model,
            arch=arch,
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
            dataset=dataset,
            defenses=r.defenses,
            settings=LatencySettings.from_config(r.latency),
            device=ctx.device,
            seed=derive_seed(r.seed, "latency-input"),
        )
        record = ctx.record()
        for row in rows:
            row.update(victim=r.victim, arch=arch, threads=torch.get_num_threads(), **record)
    save_json(rows, r.out_latency)
    return rows
