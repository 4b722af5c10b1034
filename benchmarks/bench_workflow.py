"""Throughput of the workflow's stages on this machine, as ratios to a baseline timed in the
same run (absolute times on a shared machine are a guide, ratios are the evidence).

- start-up: seconds before a stage can work (Python + torch + the package), against a bare
  ``python -c pass``;
- KnockoffNets: clones per minute when one process trains a defense's whole sweep (one job per
  sweep, the workflow today) against one process per value (one job per value, as before);
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
        [--only allocator grad ...]

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
from pathlib import Path

DATA = {"root": "resources", "attacker_holdout": 0.3, "validation_fraction": 0.1, "split_seed": 0}
VICTIM = {
    "dataset": "digits",
    "arch": "lenet5",
    "transfer_sets": ["digits_heldout"],
    "train": {"epochs": 5, "batch_size": 32, "lr": 0.05},
}
TRANSFER = {"source": "heldout"}
SECTIONS = ("startup", "knockoff", "dfme", "layout", "allocator", "grad")


def _seconds(code: str, repeats: int) -> float:
    """Median wall seconds of ``python -c code`` in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup(repeats: int) -> dict[str, float]:
    bare = _seconds("pass", repeats)
    torch_only = _seconds("import torch", repeats)
    stage = _seconds(
        "import msdefense.stages.attacks, msdefense.stages.answers, msdefense.stages.victims", repeats
    )
    return {"bare_python_s": bare, "import_torch_s": torch_only, "import_stages_s": stage}


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
    start = time.perf_counter()
    for p in params:  # one process per value: the old one-job-per-value shape
        request = knockoff_request(root / "per_value" / p, victim_dir, [p], epochs)
        subprocess.run([sys.executable, "-c", KNOCKOFF_DRIVER, json.dumps(request)], check=True)
    per_value = time.perf_counter() - start
    start = time.perf_counter()
    request = knockoff_request(root / "sweep", victim_dir, params, epochs)
    subprocess.run([sys.executable, "-c", KNOCKOFF_DRIVER, json.dumps(request)], check=True)
    sweep = time.perf_counter() - start
    same = all(
        (root / "per_value" / p / "clones" / f"{p}.safetensors").read_bytes()
        == (root / "sweep" / "clones" / f"{p}.safetensors").read_bytes()
        for p in params
    )
    return {
        "values": values,
        "clones_per_min_one_process_per_value": 60 * values / per_value,
        "clones_per_min_one_process_per_sweep": 60 * values / sweep,
        "identical_clones": same,
    }


def dfme(root: Path, iterations: int) -> dict[str, float]:
    import torch

    from msdefense.attacks import PRESETS, run_datafree
    from msdefense.defenses import build_defense
    from msdefense.models import build_model
    from msdefense.oracle import Oracle
    from msdefense.victims import load_classifier

    torch.set_num_threads(1)
    victim = load_classifier(root / "victim" / "model.safetensors")
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
    from msdefense.victims import load_classifier

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
        victim = load_classifier(root / "victim" / "model.safetensors")
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
from msdefense.victims import load_classifier
args = json.loads(sys.argv[1])
torch.set_num_threads(1)
if args["keep"]:
    assert keep_freed_memory()
cfg = from_config(args["attack"], seed=1)
cfg = cfg.with_(query_budget=cfg.cost_per_iteration * args["iterations"], eval_every=10**6)
oracle = Oracle(
    load_classifier(args["victim"]), build_defense({"method": "None", "params": [0.0]}, "digits", {}), [0.0]
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
        if sections & {"knockoff", "dfme", "layout", "allocator"}:
            prepare_victim(root / "victim", [repr(0.4 + 0.3 * i) for i in range(args.values)])
        if "knockoff" in sections:
            figures.update(knockoff(root, args.values, args.epochs))
            figures["sweep_speedup"] = (
                figures["clones_per_min_one_process_per_sweep"]
                / figures["clones_per_min_one_process_per_value"]
            )
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
