"""KnockoffNets clone recipes compared on the undefended answers a finished run left behind.

For every replicate seed of ``--results`` and every victim with undefended answers on the transfer
set, one clone per recipe and label kind, with the workflow's clone stream
(:func:`msdefense.stages.attacks.attack_stream_seed`: the same initialisation, augmentation and
order for every recipe and victim), selected on the validation split as in the workflow. Printed
per recipe: the undefended clone's test accuracy over the victim's (mean, lowest, how many clones
fall below :data:`msdefense.reporting.claims.VALID_FRACTION` of it, how many below half), the
epochs trained and why the clones stopped. This is how the default's recipe was chosen
(docs/findings.md, "Converged clones"): on undefended clones only, which the attacker can train and
check on their own validation data, before any defended clone is looked at.

    .venv/bin/python benchmarks/compare_knockoff_recipes.py [--results results/default]
        [--transfer digits_heldout] [--recipes benchmarks/knockoff_recipes.yaml]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results/default")
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--transfer", default="digits_heldout")
    parser.add_argument("--recipes", default=str(REPO / "benchmarks" / "knockoff_recipes.yaml"))
    args = parser.parse_args()

    import torch

    from msdefense import layout
    from msdefense.artifacts import read_posteriors, sweep_index
    from msdefense.attacks.knockoff import KnockoffConfig, label_kinds, run_knockoff
    from msdefense.reporting.claims import VALID_FRACTION
    from msdefense.reporting.summary import load_config
    from msdefense.seeding import seed_everything
    from msdefense.stages.attacks import attack_stream_seed, clone_scores
    from msdefense.stages.requests import VictimData
    from msdefense.training import SGDRecipe

    torch.set_num_threads(1)
    cfg = load_config(Path(args.config), REPO / "config" / "schema.yaml")
    recipes = yaml.safe_load(Path(args.recipes).read_text())["recipes"]
    base = {k: v for k, v in cfg["knockoff"].items() if k not in ("labels", "arch", "pretrained")}
    checked = {name: SGDRecipe.from_config({**base, **spec}) for name, spec in recipes.items()}
    root = Path(args.results)
    seeds = sorted(int(p.name[4:]) for p in root.glob("seed*") if p.name[4:].isdigit())
    rows = []
    for victim, vcfg in cfg["victims"].items():
        data = VictimData(vcfg["dataset"], cfg["data"])
        if args.transfer not in vcfg.get("transfer_sets", []):
            continue
        train = data.transfer(cfg["transfer_sets"][args.transfer], augment=True)
        test, val = data.test(), data.val()
        for seed in seeds:
            path = layout.path(
                str(root),
                layout.POSTERIORS,
                seed=seed,
                victim=victim,
                transfer=args.transfer,
                defense="undefended",
            )
            if not Path(path).exists():
                continue
            answers = read_posteriors(path, ["0.0"])
            e = sweep_index(answers, "0.0", path)
            cseed = attack_stream_seed(seed, "knockoff", args.transfer)
            for name, recipe in checked.items():
                for labels in label_kinds(cfg["knockoff"]):
                    seed_everything(cseed)
                    start = time.perf_counter()
                    result = run_knockoff(
                        torch.from_numpy(answers["transfer"][e]),
                        train,
                        KnockoffConfig(arch=cfg["knockoff"]["arch"], recipe=recipe, labels=labels),
                        val=val,
                        num_classes=data.spec.num_classes,
                        in_channels=data.spec.in_channels,
                        device=torch.device("cpu"),
                        seed=cseed,
                        desc=f"{name} {victim} seed{seed} {labels}",
                    )
                    acc = clone_scores(result.clone, test, answers, torch.device("cpu"))["acc"]
                    rows.append(
                        {
                            "recipe": name,
                            "victim": victim,
                            "labels": labels,
                            "seed": seed,
                            "of_victim": acc / float(answers["defender_acc"][e]),
                            "epochs": result.epochs_run,
                            "stop": result.stop_reason,
                            "seconds": time.perf_counter() - start,
                        }
                    )
    if not rows:
        raise SystemExit(
            f"no undefended answers on {args.transfer} under {root}: run the default first (make run)"
        )
    df = pd.DataFrame(rows)
    summary = df.groupby("recipe", sort=False).agg(
        clones=("of_victim", "size"),
        mean_of_victim=("of_victim", "mean"),
        lowest=("of_victim", "min"),
        below_gate=("of_victim", lambda s: int((s < VALID_FRACTION).sum())),
        below_half=("of_victim", lambda s: int((s < 0.5).sum())),
        mean_epochs=("epochs", "mean"),
        max_epochs=("epochs", "max"),
        stops=("stop", lambda s: ", ".join(f"{k} {v}" for k, v in s.value_counts().items())),
        seconds_per_clone=("seconds", "mean"),
    )
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    print(f"undefended KnockoffNets clones on {args.transfer}, {len(seeds)} seeds, {root}")
    print(summary.round(3).to_string())
    print("\nlowest per victim and label kind:")
    print(
        df.pivot_table(index=["victim", "labels"], columns="recipe", values="of_victim", aggfunc="min").round(
            3
        )
    )


if __name__ == "__main__":
    main()
