"""Throughput of the workflow's stages on this machine, as ratios to a baseline timed in the
same run (absolute times on a shared machine are a guide, ratios are the evidence).

- start-up: seconds before a stage can work (Python + torch + the package), against a bare
  ``python -c pass``, and a job's round trip through the job server (:mod:`msdefense.jobserver`:
  a client process hands a do-nothing stage to a fork of the preloaded server), against the same
  stage in a fresh process that imports the stage modules;
- KnockoffNets: clones per minute of a defense's sweep trained one by one in one process (the
  workflow) and in one process per value (one job per value, earlier);
- pooling: LeNet-5 forward passes without gradients (batch 128 and 1,408, the oracle's and the
  students' shapes in the data-free attacks) with the pools computed by reshaping
  (:mod:`msdefense.models.pooling`, today) against ``nn.MaxPool2d`` (before), and DFME / MAZE
  iterations per second both ways, interleaved A/B rounds, medians;
- fast paths: a LeNet-5 training step (batch 64 and 128) with conv3 as a matrix product
  (:mod:`msdefense.models.point_conv`, today) against the convolution (before), the DFME
  generator's passes (without gradients: its second upsampling and convolution in the sub-pixel
  form, :mod:`msdefense.models.upsample_conv`; with and without: its last convolution to one
  channel as a depthwise one and a channel sum, :mod:`msdefense.models.one_channel_conv`)
  against the plain layers, and DFME / MAZE iterations per second with all against none;
  interleaved A/B rounds, medians;
- DFME: iterations per second behind each defense, against the undefended oracle;
- data-free layout: DFME and MAZE iterations per second (the default config's attack entries,
  undefended) with the models in channels-last order (the workflow today) against the default
  contiguous layout (before), interleaved A/B rounds, medians;
- allocator: DFME and MAZE iterations per second and page faults per iteration in a fresh 1-thread
  process (a workflow job's shape) with glibc keeping freed memory
  (:func:`msdefense.runtime.keep_freed_memory`, the workflow today) against glibc's defaults
  (before), interleaved A/B rounds, medians;
- GRAD scores: the ALL-ONES scores of a CIFAR ResNet-20 surrogate by propagation rules (today)
  against ``torch.func.jvp`` (before), at batch 1 and 64, as a ratio of medians.

    .venv/bin/python benchmarks/bench_workflow.py [--values 4] [--epochs 12] [--dfme-iterations 20]
        [--only startup knockoff pooling ...]

It trains a small digits victim first (seconds) in a temporary folder; nothing is kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = {"root": "resources", "attacker_holdout": 0.3, "validation_fraction": 0.1, "split_seed": 0}
VICTIM = {
    "dataset": "digits",
    "arch": "lenet5",
    "transfer_sets": ["digits_heldout"],
    "train": {"epochs": 5, "batch_size": 32, "lr": 0.05},
}
TRANSFER = {"source": "heldout"}
SECTIONS = ("startup", "knockoff", "pooling", "fastpaths", "dfme", "layout", "allocator", "grad")


def _seconds(code: str, repeats: int) -> float:
    """Median wall seconds of ``python -c code`` in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True, kw_only=True)
class NoopRequest:
    """The request of :func:`noop`."""

    out_done: str


def noop(request: NoopRequest) -> None:
    """A stage that does nothing but write one file (the start-up benchmark's job)."""
    Path(request.out_done).write_text("done\n")


JOB_CLIENT = """
import sys
from types import SimpleNamespace
from msdefense.jobclient import run_job
sm = SimpleNamespace(wildcards={}, params={}, input={}, output={"done": sys.argv[1]}, log=[sys.argv[2]], threads=1)
run_job("bench_workflow:noop", sm)
"""


def startup(repeats: int) -> dict[str, float]:
    """Seconds of a fresh process that imports torch / the stages; a job through the job server."""
    import os

    from msdefense.jobclient import ENV, new_address
    from msdefense.launch import job_server_command

    bare = _seconds("pass", repeats)
    torch_only = _seconds("import torch", repeats)
    stage = _seconds(
        "import msdefense.stages.attacks, msdefense.stages.answers, msdefense.stages.victims", repeats
    )
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path[1:]])}
    with tempfile.TemporaryDirectory() as tmp:
        out, log = str(Path(tmp) / "done"), str(Path(tmp) / "job.log")
        env.pop(ENV, None)
        fresh = _timed(
            [sys.executable, "-c", "import msdefense.stages.attacks\n" + JOB_CLIENT, out, log], env, repeats
        )
        address = new_address()
        server = subprocess.Popen(job_server_command(address), env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            forked = _timed([sys.executable, "-c", JOB_CLIENT, out, log], {**env, ENV: address}, repeats)
        finally:
            server.terminate()
            server.wait()
    return {
        "bare_python_s": bare,
        "import_torch_s": torch_only,
        "import_stages_s": stage,
        "job_in_fresh_process_s": fresh,
        "job_through_job_server_s": forked,
        "job_startup_speedup_job_server": fresh / forked,
    }


def _timed(cmd: list[str], env: dict[str, str], repeats: int) -> float:
    """Median wall seconds of ``cmd``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


KNOCKOFF_DRIVER = """
import json, sys
from msdefense.stages import attacks
args = json.loads(sys.argv[1])
attacks.train_knockoff(attacks.KnockoffRequest(**args))
"""


def knockoff_request(folder: Path, victim_dir: Path, params: list[str], epochs: int) -> dict:
    return {
        "victim": "v",
        "transfer": "heldout",
        "defense": "DCP",
        "victim_cfg": VICTIM,
        "transfer_cfg": TRANSFER,
        "defense_cfg": {"method": "DCP", "params": [float(p) for p in params]},
        "knockoff": {"arch": "lenet5", "epochs": epochs, "batch_size": 64, "lr": 0.1},
        "params": params,
        "in_posteriors": str(victim_dir / "answers.npz"),
        "out_metrics": str(folder / "metrics.json"),
        "out_clones": str(folder / "clones"),
        "data": DATA,
        "seed": 0,
        "device": "cpu",
    }


def prepare_victim(root: Path, params: list[str]) -> Path:
    from msdefense.stages import answers, victims

    victims.train_victim(
        victims.TrainVictimRequest(
            victim="v",
            victim_cfg=VICTIM,
            out_model=str(root / "model.safetensors"),
            out_metrics=str(root / "metrics.json"),
            out_history=str(root / "history.csv"),
            data=DATA,
            seed=0,
            device="cpu",
        )
    )
    answers.answer_queries(
        answers.AnswerRequest(
            victim="v",
            victim_cfg=VICTIM,
            transfer_cfg=TRANSFER,
            defense_cfg={"method": "DCP", "params": [float(p) for p in params]},
            batch_size=256,
            in_victim=str(root / "model.safetensors"),
            out_posteriors=str(root / "answers.npz"),
            data=DATA,
            seed=0,
            device="cpu",
        )
    )
    return root


def knockoff(root: Path, values: int, epochs: int) -> dict[str, float]:
    params = [repr(0.4 + 0.3 * i) for i in range(values)]
    victim_dir = root / "victim"

    def run(folder: Path, sweep: list[str]) -> None:
        request = knockoff_request(folder, victim_dir, sweep, epochs)
        subprocess.run([sys.executable, "-c", KNOCKOFF_DRIVER, json.dumps(request)], check=True)

    start = time.perf_counter()
    for p in params:  # one process per value: the old one-job-per-value shape
        run(root / "per_value" / p, [p])
    per_value = time.perf_counter() - start
    start = time.perf_counter()
    run(root / "loop", params)
    loop = time.perf_counter() - start
    return {
        "values": values,
        "clones_per_min_one_process_per_value": 60 * values / per_value,
        "clones_per_min_sweep_one_by_one": 60 * values / loop,
        "knockoff_speedup_one_by_one_vs_process_per_value": per_value / loop,
    }


def datafree_rates(
    root: Path, name: str, iterations: int, rounds: int, contexts: dict[str, Callable[[], Any]]
) -> dict[str, float]:
    """Median iterations per second of the default config's data-free attack ``name`` against the
    undefended benchmark victim, under each context manager factory, in interleaved rounds."""
    import yaml

    from msdefense.attacks import datafree as loop
    from msdefense.attacks.datafree_config import from_config
    from msdefense.defenses import build_defense
    from msdefense.models import build_model
    from msdefense.oracle import Oracle
    from msdefense.victims import read_classifier

    attacks = yaml.safe_load(Path("config/config.yaml").read_text())["datafree"]["attacks"]
    cfg = from_config(attacks[name], seed=1)
    cfg = cfg.with_(query_budget=cfg.cost_per_iteration * iterations, eval_every=10**6)
    victim = read_classifier(root / "victim" / "model.safetensors")
    rates: dict[str, list[float]] = {k: [] for k in contexts}
    for _ in range(rounds):
        for kind, ctx in contexts.items():
            oracle = Oracle(victim, build_defense({"method": "None", "params": [0.0]}, "digits", {}), [0.0])
            with ctx():
                start = time.perf_counter()
                result = loop.run_datafree(
                    oracle, build_model("lenet5", 10, 1), cfg, image_shape=(1, 32, 32), progress=False
                )
                rates[kind].append(result.iterations / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


def pooling(root: Path, iterations: int, rounds: int) -> dict[str, float]:
    """LeNet-5 without gradients, and DFME / MAZE it/s: pools by reshaping vs nn.MaxPool2d."""
    import contextlib

    import torch

    from msdefense.models import build_model, lenet
    from msdefense.training import prepare_model

    torch.set_num_threads(1)

    @contextlib.contextmanager
    def module_pools():
        saved = lenet.max_pool_2x2
        lenet.max_pool_2x2 = lambda pool, x: pool(x)
        try:
            yield
        finally:
            lenet.max_pool_2x2 = saved

    def contexts():
        return {"module": module_pools, "reshape": contextlib.nullcontext}

    out: dict[str, float] = {}
    model = prepare_model(build_model("lenet5", 10, 1), "cpu").eval()
    for batch in (128, 1408):
        x = torch.randn(batch, 1, 32, 32)
        times: dict[str, list[float]] = {"module": [], "reshape": []}
        with torch.no_grad():
            for _ in range(rounds * 10):
                for name, ctx in contexts().items():
                    with ctx():
                        start = time.perf_counter()
                        model(x)
                        times[name].append(time.perf_counter() - start)
        before, after = (statistics.median(times[k][2:]) for k in ("module", "reshape"))
        out[f"lenet5_nograd_ms_b{batch}_module_pools"] = 1000 * before
        out[f"lenet5_nograd_ms_b{batch}_reshape_pools"] = 1000 * after
        out[f"lenet5_nograd_speedup_b{batch}"] = before / after
    for name in ("dfme", "maze"):
        rates = datafree_rates(root, name, iterations, rounds, contexts())
        before, after = rates["module"], rates["reshape"]
        out[f"{name}_it_per_s_module_pools"] = before
        out[f"{name}_it_per_s_reshape_pools"] = after
        out[f"{name}_speedup_reshape_pools"] = after / before
    return out


def dfme(root: Path, iterations: int) -> dict[str, float]:
    import torch

    from msdefense.attacks import PRESETS, run_datafree
    from msdefense.defenses import build_defense
    from msdefense.models import build_model
    from msdefense.oracle import Oracle
    from msdefense.victims import read_classifier

    torch.set_num_threads(1)
    victim = read_classifier(root / "victim" / "model.safetensors")
    surrogate = build_model("lenet5", 10, 1).eval()
    cfg = PRESETS["dfme_cifar10"](
        query_budget=896 * iterations, batch_size=128, generator_width=8, eval_every=10, seed=1
    )
    val = (torch.randn(180, 1, 32, 32), torch.randint(0, 10, (180,)))
    rates = {}
    for name, entry, aux in (
        ("undefended", {"method": "None"}, {}),
        ("DCP", {"method": "DCP"}, {}),
        ("GRAD", {"method": "GRAD", "surrogate_epochs": 10}, {"surrogate_e10": surrogate}),
        ("MAD", {"method": "MAD"}, {"surrogate_e0": surrogate}),
    ):
        oracle = Oracle(victim, build_defense({**entry, "params": [0.5]}, "digits", aux), [0.5])
        start = time.perf_counter()
        result = run_datafree(
            oracle,
            build_model("lenet5", 10, 1),
            cfg,
            image_shape=(1, 32, 32),
            val_data=val,
            progress=False,
        )
        rates[name] = result.iterations / (time.perf_counter() - start)
    return {
        "dfme_it_per_s_undefended": rates["undefended"],
        **{
            f"dfme_time_per_it_{k}_vs_undefended": rates["undefended"] / v
            for k, v in rates.items()
            if k != "undefended"
        },
    }


def datafree_layout(root: Path, iterations: int, rounds: int) -> dict[str, float]:
    """DFME / MAZE iterations per second, channels-last (today) vs the contiguous layout (before)."""
    import contextlib

    import torch
    import yaml

    from msdefense.attacks import datafree as loop
    from msdefense.attacks.datafree_config import from_config
    from msdefense.defenses import build_defense
    from msdefense.models import build_model, generators
    from msdefense.oracle import Oracle
    from msdefense.victims import read_classifier

    torch.set_num_threads(1)
    attacks = yaml.safe_load(Path("config/config.yaml").read_text())["datafree"]["attacks"]

    @contextlib.contextmanager
    def contiguous_layout():
        saved = generators.CHANNELS_LAST, loop.prepare_model
        generators.CHANNELS_LAST = torch.contiguous_format
        loop.prepare_model = lambda model, device: model.to(device)
        try:
            yield
        finally:
            generators.CHANNELS_LAST, loop.prepare_model = saved

    def rate(name: str, layout: str) -> float:
        cfg = from_config(attacks[name], seed=1)
        cfg = cfg.with_(query_budget=cfg.cost_per_iteration * iterations, eval_every=10**6)
        victim = read_classifier(root / "victim" / "model.safetensors")
        context = contextlib.nullcontext() if layout == "channels_last" else contiguous_layout()
        with context:
            if layout != "channels_last":
                victim = victim.to(memory_format=torch.contiguous_format)
            oracle = Oracle(victim, build_defense({"method": "None", "params": [0.0]}, "digits", {}), [0.0])
            start = time.perf_counter()
            result = loop.run_datafree(
                oracle, build_model("lenet5", 10, 1), cfg, image_shape=(1, 32, 32), progress=False
            )
        return result.iterations / (time.perf_counter() - start)

    out: dict[str, float] = {}
    for name in attacks:
        runs: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
        for _ in range(rounds):
            for layout in runs:
                runs[layout].append(rate(name, layout))
        before, after = (statistics.median(runs[k]) for k in ("contiguous", "channels_last"))
        out[f"{name}_it_per_s_contiguous_layout"] = before
        out[f"{name}_it_per_s_channels_last"] = after
        out[f"{name}_speedup_channels_last"] = after / before
    return out


ALLOCATOR_DRIVER = """
import json, resource, sys, time
from pathlib import Path
import torch
from msdefense.attacks import datafree as loop
from msdefense.attacks.datafree_config import from_config
from msdefense.defenses import build_defense
from msdefense.models import build_model
from msdefense.oracle import Oracle
from msdefense.runtime import keep_freed_memory
from msdefense.victims import read_classifier
args = json.loads(sys.argv[1])
torch.set_num_threads(1)
if args["keep"]:
    assert keep_freed_memory()
cfg = from_config(args["attack"], seed=1)
cfg = cfg.with_(query_budget=cfg.cost_per_iteration * args["iterations"], eval_every=10**6)
oracle = Oracle(
    read_classifier(args["victim"]), build_defense({"method": "None", "params": [0.0]}, "digits", {}), [0.0]
)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = time.perf_counter()
result = loop.run_datafree(oracle, build_model("lenet5", 10, 1), cfg, image_shape=(1, 32, 32), progress=False)
seconds = time.perf_counter() - start
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"it_per_s": result.iterations / seconds, "faults_per_it": faults / result.iterations}))
"""


def allocator(root: Path, iterations: int, rounds: int) -> dict[str, float]:
    """DFME / MAZE in fresh 1-thread processes: glibc keeping freed memory (today) vs its defaults."""
    import yaml

    attacks = yaml.safe_load(Path("config/config.yaml").read_text())["datafree"]["attacks"]
    out: dict[str, float] = {}
    for name in ("dfme", "maze"):
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(rounds):
            for keep in runs:
                request = {
                    "attack": attacks[name],
                    "iterations": iterations,
                    "keep": keep,
                    "victim": str(root / "victim" / "model.safetensors"),
                }
                done = subprocess.run(
                    [sys.executable, "-c", ALLOCATOR_DRIVER, json.dumps(request)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs[keep].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for keep, label in ((False, "glibc_default"), (True, "keep_freed")):
            for key in ("it_per_s", "faults_per_it"):
                out[f"{name}_{key}_{label}"] = statistics.median(r[key] for r in runs[keep])
        out[f"{name}_speedup_keep_freed"] = (
            out[f"{name}_it_per_s_keep_freed"] / out[f"{name}_it_per_s_glibc_default"]
        )
    return out


def grad_scores(repeats: int) -> dict[str, float]:
    """ms per GRAD score call, propagation rules vs jvp, interleaved; 2 threads (the latency job's)."""
    import torch

    from msdefense.defenses.grad import GRAD
    from msdefense.models import build_model
    from msdefense.training import prepare_model

    torch.set_num_threads(2)
    surrogate = prepare_model(build_model("resnet20", 10, 3), "cpu").eval()
    methods = {"rules": GRAD(surrogate), "jvp": GRAD(surrogate, use_rules=False)}
    out: dict[str, float] = {}
    for batch in (1, 64):
        x = torch.randn(batch, 3, 32, 32)
        probs = torch.softmax(surrogate(x), -1).detach()
        times: dict[str, list[float]] = {k: [] for k in methods}
        for _ in range(repeats + 2):
            for name, grad in methods.items():
                start = time.perf_counter()
                grad.scores(x, probs)
                times[name].append(time.perf_counter() - start)
        rules, jvp = (statistics.median(times[k][2:]) for k in ("rules", "jvp"))
        out[f"grad_scores_ms_b{batch}_rules"] = 1000 * rules
        out[f"grad_scores_ms_b{batch}_jvp"] = 1000 * jvp
        out[f"grad_scores_speedup_b{batch}"] = jvp / rules
    return out


def fast_paths(root: Path, iterations: int, rounds: int) -> dict[str, float]:
    """LeNet-5 training steps, generator passes and DFME / MAZE it/s: fast paths on vs off."""
    import contextlib

    import torch
    import torch.nn.functional as F

    from msdefense.models import build_generator, build_model, one_channel_conv, point_conv, upsample_conv
    from msdefense.runtime import keep_freed_memory
    from msdefense.training import prepare_model

    torch.set_num_threads(1)
    keep_freed_memory()

    @contextlib.contextmanager
    def layers():
        modules = (point_conv, upsample_conv, one_channel_conv)
        saved = [m.fast_path for m in modules]
        for m in modules:
            m.fast_path = lambda *_: False
        try:
            yield
        finally:
            for m, fast in zip(modules, saved, strict=True):
                m.fast_path = fast

    kinds = {"layers": layers, "fast": contextlib.nullcontext}

    def ab(fn, repeats: int) -> tuple[float, float]:
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(repeats):
            for kind, ctx in kinds.items():
                with ctx():
                    start = time.perf_counter()
                    fn()
                    times[kind].append(time.perf_counter() - start)
        return statistics.median(times["layers"][2:]), statistics.median(times["fast"][2:])

    out: dict[str, float] = {}
    model = prepare_model(build_model("lenet5", 10, 1), "cpu").train()
    for batch in (64, 128):
        x, y = torch.randn(batch, 1, 32, 32), torch.randint(0, 10, (batch,))
        before, after = ab(lambda x=x, y=y: F.cross_entropy(model(x), y).backward(), rounds * 20)
        out[f"lenet5_train_step_ms_b{batch}_conv3_as_conv"] = 1000 * before
        out[f"lenet5_train_step_ms_b{batch}_conv3_as_matmul"] = 1000 * after
        out[f"lenet5_train_step_speedup_b{batch}"] = before / after
    gen = prepare_model(build_generator("dfme", 256, 1, 32, ngf=8), "cpu").train()
    z = torch.randn(128, 256)
    with torch.no_grad():
        before, after = ab(lambda: gen(z), rounds * 20)
    out["dfme_generator_nograd_ms_b128_layers"] = 1000 * before
    out["dfme_generator_nograd_ms_b128_fast_paths"] = 1000 * after
    out["dfme_generator_nograd_speedup"] = before / after
    before, after = ab(lambda: gen(z).sum().backward(), rounds * 10)
    out["dfme_generator_fwd_bwd_ms_b128_layers"] = 1000 * before
    out["dfme_generator_fwd_bwd_ms_b128_fast_paths"] = 1000 * after
    out["dfme_generator_fwd_bwd_speedup"] = before / after
    for name in ("dfme", "maze"):
        rates = datafree_rates(root, name, iterations, rounds, kinds)
        before, after = rates["layers"], rates["fast"]
        out[f"{name}_it_per_s_layers"] = before
        out[f"{name}_it_per_s_fast_paths"] = after
        out[f"{name}_speedup_fast_paths"] = after / before
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=4, help="sweep values of the KnockoffNets benchmark")
    parser.add_argument("--epochs", type=int, default=12, help="KnockoffNets epochs (the default config's)")
    parser.add_argument("--dfme-iterations", type=int, default=20)
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument(
        "--layout-iterations", type=int, default=30, help="iterations per data-free layout run"
    )
    parser.add_argument("--grad-repeats", type=int, default=20, help="timed GRAD score calls per method")
    parser.add_argument("--layout-rounds", type=int, default=3, help="interleaved A/B rounds per attack")
    parser.add_argument(
        "--allocator-iterations", type=int, default=30, help="iterations per data-free allocator run"
    )
    parser.add_argument("--allocator-rounds", type=int, default=3, help="interleaved A/B allocator rounds")
    parser.add_argument(
        "--only",
        nargs="+",
        default=list(SECTIONS),
        choices=SECTIONS,
        help="sections to run (default: all)",
    )
    args = parser.parse_args()
    sections = set(args.only)
    figures: dict[str, float] = {}
    if "startup" in sections:
        figures.update(startup(args.startup_repeats))
        figures["startup_s_over_bare_python"] = figures["import_stages_s"] - figures["bare_python_s"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if sections & {"knockoff", "pooling", "fastpaths", "dfme", "layout", "allocator"}:
            prepare_victim(root / "victim", [repr(0.4 + 0.3 * i) for i in range(args.values)])
        if "knockoff" in sections:
            figures.update(knockoff(root, args.values, args.epochs))
        if "pooling" in sections:
            figures.update(pooling(root, args.layout_iterations, args.layout_rounds))
        if "fastpaths" in sections:
            figures.update(fast_paths(root, args.layout_iterations, args.layout_rounds))
        if "dfme" in sections:
            figures.update(dfme(root, args.dfme_iterations))
        if "layout" in sections:
            figures.update(datafree_layout(root, args.layout_iterations, args.layout_rounds))
        if "allocator" in sections:
            figures.update(allocator(root, args.allocator_iterations, args.allocator_rounds))
    if "grad" in sections:
        figures.update(grad_scores(args.grad_repeats))
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
