"""A rehearsal: any experiment config shrunk to minutes, with its real architectures, loaders,
transforms, defenses and tables.

``config/rehearsal.yaml`` merged on top of a config (``--configfile config/paper/X.yaml
config/rehearsal.yaml``) adds a ``rehearsal`` section; :func:`rehearse` (called by the preflight
once the schema has filled the defaults) then cuts the experiment to its first seed, every
training to ``epochs``, every sweep to its first and last values, every data-free attack to
``iterations`` iterations against the undefended oracle and DCP only, transfer sets to
``transfer_size`` images and the latency rounds to a few; the datasets are fabricated in their
real on-disk formats under ``data_root`` (:mod:`msdefense.data.samples`, written by
``prepare_dataset``). Pretrained weights are not fetched (no network): those victims
and clones start from random weights. Results go to ``results/<experiment>_rehearsal``. A
rehearsal checks that a config executes; its numbers mean nothing.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

#: the keys of the ``rehearsal`` section and their defaults (config/README.md)
DEFAULTS = {
    "images": 24,  # fabricated images per split of each dataset
    "epochs": 1,
    "iterations": 1,  # data-free iterations
    "transfer_size": 32,
    "data_root": "resources/rehearsal",
}


def settings(config: MutableMapping[str, Any]) -> dict[str, Any] | None:
    """The rehearsal section with its defaults, or None when the config is not a rehearsal."""
    given = config.get("rehearsal")
    return None if given is None else {**DEFAULTS, **given}


def rehearse(config: MutableMapping[str, Any]) -> None:
    """Shrink ``config`` in place as the module docstring says (nothing when it is not a rehearsal)."""
    r = settings(config)
    if r is None:
        return
    config["rehearsal"] = r
    from pathlib import Path

    from .config import ConfigError

    if Path(r["data_root"]).resolve() == Path(config["data"]["root"]).resolve():
        raise ConfigError(
            f"config key rehearsal.data_root: {r['data_root']!r} is the experiment's data.root; fabricated "
            f"datasets would take the place of the real ones there: give the rehearsal its own folder"
        )
    if not config["experiment"].endswith("_rehearsal"):
        config["experiment"] = f"{config['experiment']}_rehearsal"
    config["seeds"] = list(config["seeds"])[:1]
    config["data"]["root"] = r["data_root"]
    epochs = r["epochs"]
    for v in config["victims"].values():
        v["pretrained"] = False
        _shorten(v.get("train"), epochs)
        if "misleader" in v:
            _shorten(v["misleader"]["train"], epochs)
            if "patience" in v["misleader"]["train"]:
                v["misleader"]["train"]["patience"] = 1
        if "quantize" in v:
            q = v["quantize"]
            q["calibration_images"] = min(q["calibration_images"], r["images"])
            q["qat_epochs"] = min(q["qat_epochs"], epochs)
    for entry in (config.get("defender_models") or {}).values():
        _shorten(entry, epochs)
    knockoff = config["knockoff"]
    knockoff["pretrained"] = False
    _shorten(knockoff, epochs)
    knockoff.pop("warmup_epochs", None)
    for t in config["transfer_sets"].values():
        t["size"] = min(t.get("size", r["transfer_size"]), r["transfer_size"])
    kept = _trim_sweeps(config)
    _trim_datafree(config, kept, r["iterations"])
    latency = config.setdefault("latency", {})
    latency.update(warmup=0, repeats=2, max_seconds=0.2)
    latency["batch_sizes"] = sorted({min(b, 8) for b in latency.get("batch_sizes", [1, 64])})


def _shorten(recipe: MutableMapping[str, Any] | None, epochs: int) -> None:
    if recipe is None:
        return
    recipe["epochs"] = min(recipe["epochs"], epochs)
    recipe["num_workers"] = 0  # a few images: worker processes cost more than they save
    if "patience" in recipe:
        recipe["patience"] = 1


def _trim_sweeps(config: MutableMapping[str, Any]) -> dict[str, set[float]]:
    """Every sweep to its first and last values; victims' own subsets to what is left (a subset
    left empty takes the sweep's last value). Returns the values kept per defense."""
    kept = {}
    for name, d in config["defenses"].items():
        values = list(map(float, d["params"]))
        d["params"] = values[:1] + values[-1:] if len(values) > 1 else values
        kept[name] = set(d["params"])
    for v in config["victims"].values():
        if v.get("defenses"):
            v["defenses"] = {
                name: [p for p in map(float, ps) if p in kept[name]]
                or [config["defenses"][name]["params"][-1]]
                for name, ps in v["defenses"].items()
            }
    return kept


def _trim_datafree(config: MutableMapping[str, Any], kept: dict[str, set[float]], iterations: int) -> None:
    """Data-free params to the kept values; each attack to ``iterations`` iterations of a small batch."""
    from .attacks.datafree_config import from_config

    df = config.get("datafree")
    if not df:
        return

    # against the undefended oracle and DCP only: every defense already answers KnockoffNets' queries,
    # and a data-free job per defense and value is most of a paper config's rehearsal time
    methods = {name: d["method"] for name, d in config["defenses"].items()}

    def subset(params: dict[str, list[float]]) -> dict[str, list[float]]:
        chosen = {n: ps for n, ps in params.items() if methods[n] in ("None", "DCP")} or params
        out = {name: [p for p in map(float, ps) if p in kept[name]] for name, ps in chosen.items()}
        return {name: ps for name, ps in out.items() if ps} or {
            name: [max(kept[name])] for name in list(params)[:1]
        }

    df["params"] = subset(df["params"])
    for entry in df["attacks"].values():
        if "params" in entry:
            entry["params"] = subset(entry["params"])
        entry["batch_size"] = min(int(entry.get("batch_size", from_config(entry).batch_size)), 16)
        if from_config(entry).replay_size:
            entry["replay_size"] = 256
        if from_config(entry).iter_exp:
            entry["iter_exp"] = 1  # one replay step: MAZE's replay loop runs, briefly
        entry["eval_every"] = 1
        entry["query_budget"] = iterations * from_config(entry).cost_per_iteration
