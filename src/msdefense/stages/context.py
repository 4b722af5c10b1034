"""What every stage does before and after its work, in one place.

:func:`stage` picks the device, seeds every RNG, starts the clock and resets the CUDA peak
counter; the :class:`StageContext` it yields turns a stage's results into the one metrics record
shape every stage writes (``wall_seconds``, ``peak_memory_mb`` for the host,
``peak_gpu_memory_mb``, ``device``). :func:`run_rule` is what a workflow script calls: it builds
the stage's request from the rule's wildcards, params, input and output, sets up logging and
threads, and runs the stage.
"""

from __future__ import annotations

import os
import resource
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import torch

from ..resources import RULES
from ..seeding import check_gpu_request, configure_cuda, pick_device, seed_everything

#: Keys of a metrics record that vary from run to run (not compared in determinism checks).
TIMING_KEYS = ("wall_seconds", "peak_memory_mb", "peak_gpu_memory_mb", "clone_seconds")


def peak_host_memory_mb() -> float:
    """Peak resident memory of this process, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_gpu_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated on ``device`` since the stage started, in MiB (0 off CUDA)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else 0.0


@dataclass
class StageContext:
    """The device a stage runs on and its clock."""

    device: torch.device
    started: float

    def record(self, **fields_: Any) -> dict[str, Any]:
        """A metrics record: the stage's fields, then device, wall time and peak memory."""
        return {
            **fields_,
            "device": str(self.device),
            "wall_seconds": round(time.perf_counter() - self.started, 2),
            "peak_memory_mb": peak_host_memory_mb(),
            "peak_gpu_memory_mb": peak_gpu_memory_mb(self.device),
        }


def write_record(record: dict[str, Any], path: str) -> dict[str, Any]:
    """Write a stage's metrics record as JSON (atomically) and return it."""
    from ..io import save_json

    save_json(record, path)
    return record


@contextmanager
def stage(device: str, seed: int | None = None) -> Iterator[StageContext]:
    """Set a stage up: device (``auto``, ``cpu``, ``cuda[:i]``), every RNG seeded with ``seed``."""
    dev = pick_device(device)
    if dev.type == "cuda":
        configure_cuda()
    if seed is not None:
        seed_everything(seed)
    if dev.type == "cuda":  # never initialise CUDA for a CPU stage
        torch.cuda.reset_peak_memory_stats(dev)
    yield StageContext(device=dev, started=time.perf_counter())


def request_type(stage_fn: Callable[[Any], Any]) -> type:
    """The request dataclass a stage function takes (its only parameter's annotation)."""
    hints = typing.get_type_hints(stage_fn)
    hints.pop("return", None)
    if len(hints) != 1:
        raise TypeError(f"{stage_fn.__name__} must take exactly one annotated request parameter")
    return next(iter(hints.values()))


def _items(named: Any) -> dict[str, Any]:
    if named is None:
        return {}
    if isinstance(named, Mapping):
        return dict(named)
    return {k: named[k] for k in named.keys()}  # noqa: SIM118 (Snakemake's Namedlist)


def _plain(value: Any) -> Any:
    """Snakemake's Namedlist / str subclasses as plain lists / strings."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _request(
    cls: type,
    wildcards: dict[str, Any],
    params: dict[str, Any],
    inputs: dict[str, Any],
    outputs: dict[str, Any],
) -> Any:
    values: dict[str, Any] = {}
    values.update(wildcards)
    params = dict(params)
    aux_names = params.pop("aux_names", None)
    params.pop("code", None)  # the code fingerprint: a rerun trigger, not an input of the stage
    values.update(params)
    inputs = dict(inputs)
    inputs.pop("data", None)  # the prepare_dataset flags: they order the job, the stage reads data.root
    if aux_names is not None:
        aux = _plain(inputs.pop("aux", []))
        values["in_aux"] = dict(zip(aux_names, [aux] if isinstance(aux, str) else aux, strict=True))
    values.update({f"in_{k}": _plain(v) for k, v in inputs.items()})
    values.update({f"out_{k}": _plain(v) for k, v in outputs.items()})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names - set(wildcards))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field for the rule's {unknown}")
    return cls(**{k: v for k, v in values.items() if k in names})


def request_from_rule(cls: type, sm: Any) -> Any:
    """Build the request ``cls`` of a rule: wildcards and params by name, input ``k`` as
    ``in_<k>``, output ``k`` as ``out_<k>``; ``params.aux_names`` zipped with ``input.aux``
    gives ``in_aux``; ``params.code`` (the code fingerprint) and ``input.data`` (the dataset
    flags) are not passed. Refuses a rule entry the request does not declare, and a missing field."""
    return _request(cls, _items(sm.wildcards), _items(sm.params), _items(sm.input), _items(sm.output))


def _seed_share(value: Any, i: int, n: int, *, key: str) -> Any:
    """Seed ``i``'s share of a per-seed entry that lists the ``n`` seeds' items seed after seed."""
    items = _plain(value) if isinstance(value, list) else [_plain(value)]
    if len(items) % n:
        raise TypeError(f"per-seed entry {key!r} has {len(items)} items, not a multiple of the {n} seeds")
    size = len(items) // n
    share = items[i * size : (i + 1) * size]
    return share[0] if size == 1 else share


def requests_from_rule(cls: type, sm: Any) -> list[Any]:
    """The requests of a job: one (:func:`request_from_rule`), or one per replicate seed when
    the rule serves several seeds in one process (``params.seeds``, the seeds in order, and
    ``params.per_seed``, the inputs and outputs that list one item, or one group of items for
    ``aux``, per seed: seed ``i`` gets the ``i``-th share; the others are shared by every seed)."""
    params = _items(sm.params)
    seeds = params.pop("seeds", None)
    per_seed = set(params.pop("per_seed", ()))
    if seeds is None:
        return [request_from_rule(cls, sm)]
    inputs, outputs = _items(sm.input), _items(sm.output)
    missing = sorted(per_seed - set(inputs) - set(outputs))
    if missing:
        raise TypeError(f"per_seed names {missing}, which the rule has neither as input nor as output")

    def share(entries: dict[str, Any], i: int) -> dict[str, Any]:
        return {k: _seed_share(v, i, len(seeds), key=k) if k in per_seed else v for k, v in entries.items()}

    wildcards = _items(sm.wildcards)
    return [
        _request(cls, wildcards, {**params, "seed": int(seed)}, share(inputs, i), share(outputs, i))
        for i, seed in enumerate(seeds)
    ]


def run_rule(stage_fn: Callable[[Any], Any], sm: Any) -> Any:
    """Run ``stage_fn`` for the Snakemake job ``sm``: log to ``sm.log[0]``, ``sm.threads`` threads.

    A job that serves several seeds (:func:`requests_from_rule`) runs the stage once per seed,
    in seed order, in this one process, and returns the list of their results.
    """
    from ..runtime import job

    with job(sm.log[0] if sm.log else None, sm.threads):
        needs = RULES.get(stage_fn.__name__)
        if needs is None or needs.gpu:  # a CPU-only rule (tables, downloads) never uses a GPU
            check_gpu_request(
                gpus=int(_items(getattr(sm, "resources", None)).get("gpu", 0)),
                device=str(_items(sm.params).get("device", "auto")),
                environ=os.environ,
                cuda_available=torch.cuda.is_available(),
                rule=f"job {stage_fn.__name__}",
            )
        requests = requests_from_rule(request_type(stage_fn), sm)
        if "seeds" not in _items(sm.params):
            return stage_fn(*requests)
        results = []
        for request in requests:
            print(f"seed {request.seed}", flush=True)
            results.append(stage_fn(request))
        return results


@dataclass(frozen=True, kw_only=True)
class StageRequest:
    """What every stage request carries: the config's ``data`` section, the replicate seed (one
    of the config's ``seeds``; the ``seed`` wildcard) and the requested device."""

    data: Mapping[str, Any]
    seed: int
    device: str = "auto"
