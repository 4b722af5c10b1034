"""Paired comparison of data-free attack variants (preset, budget, schedule, generator width)
against the undefended victims a finished run left behind, as a fraction of each victim's test
accuracy, with 95% t-intervals over the replicates and of the paired differences to a baseline
variant.

Each variant is the default config's ``datafree.attacks.<base>`` entry (its run scope aside) with
the variant's settings on top, attacking with the config's ``datafree.student``. A replicate is
(victim seed, attack stream): the victim of ``<results>/seed<N>/victims/<victim>``
and an attack seed derived from N and the stream name, so every variant meets the same victims
with the same random streams and the differences are paired. The clone is selected on the
validation split, as in the workflow (:func:`msdefense.stages.attacks.run_datafree`).

    .venv/bin/python benchmarks/compare_datafree.py benchmarks/dfme_schedules.yaml \
        [--results results/default] [--jobs 2] [--out /tmp/compare_datafree_dfme_schedules.jsonl]

Rows are appended to ``--out`` as they finish (one JSON object per line, with the variant's
settings); a rerun skips the (variant, seed, stream) rows already there with the same settings, so
an interrupted comparison continues and a changed variant runs again.
"""

from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def run_one(
    *,
    results: str,
    victim: str,
    dataset: str,
    data: dict[str, Any],
    student_arch: str,
    variant: str,
    cfg: dict[str, Any],
    seed: int,
    stream: str,
) -> dict[str, Any]:
    """One undefended attack on the victim of ``seed`` with the stream ``stream``; its row."""
    import torch

    from msdefense import layout
    from msdefense.attacks import load_best, run_datafree
    from msdefense.attacks.datafree_config import from_config
    from msdefense.defenses.registry import build_defense
    from msdefense.models import build_model
    from msdefense.oracle import Oracle
    from msdefense.seeding import derive_seed, seed_everything
    from msdefense.stages.requests import VictimData
    from msdefense.training import accuracy, dataset_tensors, predict_logits
    from msdefense.victims import read_victim

    torch.set_num_threads(1)
    path = layout.path(results, layout.VICTIM_MODEL, seed=seed, victim=victim)
    model, _ = read_victim(path, "cpu", pattern=layout.VICTIM_MODEL)
    splits = VictimData(dataset, data)
    aseed = derive_seed(seed, "datafree", stream, victim)
    attack = from_config(cfg, aseed)
    oracle = Oracle(model, build_defense({"method": "None"}, dataset), [0.0], budget=attack.query_budget)
    val, (test_x, test_y) = dataset_tensors(splits.val()), dataset_tensors(splits.test())
    seed_everything(aseed)
    student = build_model(student_arch, splits.spec.num_classes, splits.spec.in_channels)
    result = run_datafree(
        oracle, student, attack, image_shape=splits.image_shape(), val_data=val, progress=False
    )
    cpu = torch.device("cpu")
    victim_acc = accuracy(predict_logits(model, test_x, cpu, amp=False), test_y)
    clone_acc = accuracy(predict_logits(load_best(result.student, result), test_x, cpu, amp=False), test_y)
    final_acc = accuracy(predict_logits(result.student, test_x, cpu, amp=False), test_y)
    return {
        "variant": variant,
        "config": cfg,
        "seed": seed,
        "stream": stream,
        "victim_acc": victim_acc,
        "clone_acc": clone_acc,
        "of_victim": clone_acc / victim_acc,
        "final_of_victim": final_acc / victim_acc,
        "best_iteration": result.best_iteration,
        "iterations": result.iterations,
        "queries": result.queries_used,
        "seconds": result.wall_seconds,
    }


def variant_config(base: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """A variant's attack entry: the ``base`` entry with the variant's settings on top (less ``vs``)."""
    return {**base, **{k: v for k, v in entry.items() if k != "vs"}}


def _over_victims(values: dict[tuple[int, str], float]) -> list[float]:
    """The per-victim means (the streams of a victim seed averaged): the replicates of a question
    about victims, where the (seed, stream) rows of one victim are not independent."""
    per_seed: dict[int, list[float]] = {}
    for (seed, _), value in sorted(values.items()):
        per_seed.setdefault(seed, []).append(value)
    return [sum(v) / len(v) for v in per_seed.values()]


def _interval(values: list[float], sign: str = "") -> str:
    """``mean [low, high]`` of the 95% t-interval (``[no interval]`` below two values)."""
    from msdefense.reporting.replicates import t_interval

    m, lo, hi = t_interval(values)
    bounds = "no interval" if math.isnan(lo) else f"{lo:{sign}.3f}, {hi:{sign}.3f}"
    return f"{m:{sign}.3f} [{bounds}]"


def report(rows: list[dict[str, Any]], spec: dict[str, Any]) -> str:
    """Per variant: mean clone/victim with its interval over the (seed, stream) replicates and over
    the victims (streams averaged per seed), the lowest replicate, seconds per run, and the paired
    difference to the variant it is compared with (its ``vs``, else the spec's ``baseline``) with
    its interval, over replicates and over victims."""
    by = {(r["variant"], r["seed"], r["stream"]): r for r in rows}
    lines = [
        "| variant | n | clone / victim [95% CI] | over victims [95% CI] | lowest | s per run "
        "| paired difference [95% CI] | over victims [95% CI] |",
        "|---|---:|---|---|---:|---:|---|---|",
    ]
    for name, entry in spec["variants"].items():
        mine = {k[1:]: r["of_victim"] for k, r in by.items() if k[0] == name}
        if not mine:
            continue
        secs = sum(by[(name, *k)]["seconds"] for k in mine) / len(mine)
        victims = _over_victims(mine)
        other = entry.get("vs", spec["baseline"])
        paired = {k: v - by[(other, *k)]["of_victim"] for k, v in mine.items() if (other, *k) in by}
        diff = diff_victims = ""
        if name != other and paired:
            diff = f"{_interval(list(paired.values()), '+')} − {other}"
            diff_victims = _interval(_over_victims(paired), "+")
        lines.append(
            f"| {name} | {len(mine)} | {_interval(list(mine.values()))} "
            f"| {_interval(victims)} ({len(victims)}) | {min(mine.values()):.3f} | {secs:.0f} "
            f"| {diff} | {diff_victims} |"
        )
    return "\n".join(lines)


def selection_report(rows: list[dict[str, Any]], spec: dict[str, Any]) -> str:
    """Per variant whose rows all hold the final clone too: the clone selected on validation
    against the final one (the last iteration's), each over victims, and final − selected paired
    over victims; empty when no variant has them (rows from before they were recorded)."""
    lines = []
    for name in spec["variants"]:
        mine = [r for r in rows if r["variant"] == name]
        if not mine or any("final_of_victim" not in r for r in mine):
            continue
        picked = _over_victims({(r["seed"], r["stream"]): r["of_victim"] for r in mine})
        final = _over_victims({(r["seed"], r["stream"]): r["final_of_victim"] for r in mine})
        gain = _interval([f - p for f, p in zip(final, picked, strict=True)], "+")
        at_end = sum(r["best_iteration"] == r["iterations"] for r in mine)
        lines.append(
            f"| {name} | {sum(picked) / len(picked):.3f} | {sum(final) / len(final):.3f} | {gain} "
            f"| {at_end} of {len(mine)} |"
        )
    if not lines:
        return ""
    head = [
        "| variant | selected on validation | final | final − selected, over victims [95% CI] "
        "| selected at the last iteration |",
        "|---|---:|---:|---|---:|",
    ]
    return "\n".join(head + lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="YAML: victim, seeds, streams, baseline, base, variants")
    parser.add_argument("--results", default="results/default", help="a finished run's results folder")
    parser.add_argument("--jobs", type=int, default=2, help="attacks at once (each one thread)")
    parser.add_argument(
        "--out", type=Path, help="rows, one JSON object per line (/tmp/compare_datafree_<spec>.jsonl)"
    )
    args = parser.parse_args()

    spec = yaml.safe_load(args.spec.read_text())
    from msdefense import layout
    from msdefense.attacks.datafree_config import SCOPE_KEYS, from_config
    from msdefense.reporting.summary import load_config

    config = load_config(REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml")
    victim = spec["victim"]
    dataset = config["victims"][victim]["dataset"]
    # the default config's attack entry the variants change (its run scope aside) and its student
    entry = config["datafree"]["attacks"][spec["base"]]
    base = {k: v for k, v in entry.items() if k not in SCOPE_KEYS}
    variants = list(spec["variants"])
    if spec["baseline"] not in variants:
        raise SystemExit(f"{args.spec}: baseline {spec['baseline']!r} is not one of the variants {variants}")
    missing = [
        p
        for s in spec["seeds"]
        if not Path(p := layout.path(args.results, layout.VICTIM_MODEL, seed=s, victim=victim)).is_file()
    ]
    if missing:
        raise SystemExit(
            f"no victim at {', '.join(missing)}: run the workflow first (make run), or pass --results"
        )
    configs = {name: variant_config(base, spec["variants"][name]) for name in variants}
    for name, cfg in configs.items():  # every variant's settings checked before any attack runs
        try:
            from_config(cfg)
        except (KeyError, TypeError, ValueError) as err:
            raise SystemExit(f"{args.spec}: variant {name!r}: {err}") from err
        if spec["variants"][name].get("vs", spec["baseline"]) not in variants:
            raise SystemExit(f"{args.spec}: variant {name!r}: 'vs' names no variant (known: {variants})")
    out = args.out or Path(f"/tmp/compare_datafree_{args.spec.stem}.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    # a row counts only while its variant's settings are unchanged
    done = [r for r in rows if r["variant"] in configs and r["config"] == configs[r["variant"]]]
    have = {(r["variant"], r["seed"], r["stream"]) for r in done}
    todo = [
        (name, seed, stream)
        for seed in spec["seeds"]
        for stream in spec["streams"]
        for name in variants
        if (name, seed, stream) not in have
    ]
    print(f"{len(todo)} runs to do, {len(have)} already in {out}", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, out.open("a") as handle:
        futures = [
            pool.submit(
                run_one,
                results=args.results,
                victim=victim,
                dataset=dataset,
                data=config["data"],
                student_arch=config["datafree"]["student"],
                variant=name,
                cfg=configs[name],
                seed=seed,
                stream=stream,
            )
            for name, seed, stream in todo
        ]
        for future in as_completed(futures):
            row = future.result()
            done.append(row)
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            print(f"{row['variant']} seed {row['seed']} {row['stream']}: {row['of_victim']:.3f}", flush=True)
    print(report(done, spec))
    if selection := selection_report(done, spec):
        print(selection)


if __name__ == "__main__":
    main()
