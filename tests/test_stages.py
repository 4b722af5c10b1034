"""Every stage function called directly (no Snakemake): a tiny digits victim, a few hundred images,
one epoch, seconds each. The stages are chained as the DAG chains them, through the files they write."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from snakemake.iocontainers import Namedlist

from msdefense import layout
from msdefense.attacks.knockoff import label_kinds
from msdefense.io import load_arrays, load_json, save_arrays
from msdefense.stages import answers, attacks, data, defender_models, latency, tables, victims
from msdefense.stages.context import (
    TIMING_KEYS,
    request_from_rule,
    request_type,
    requests_from_rule,
    run_rule,
)
from msdefense.victims import read_victim, read_victim_info

SEED = 3
DATA = {"root": "resources", "attacker_holdout": 0.3, "validation_fraction": 0.1, "split_seed": 0}
COMMON = {"data": DATA, "seed": SEED, "device": "cpu"}
VICTIM = {
    "dataset": "digits",
    "arch": "lenet5fifth",
    "transfer_sets": ["photos"],
    "train": {"epochs": 10, "batch_size": 32, "lr": 0.1},
}
TRANSFER = {"source": "photo_crops", "size": 200}
RECIPE = {"epochs": 1, "batch_size": 64, "lr": 0.05}
DCP = {"method": "DCP", "params": [0.0, 1.5]}
GRAD = {"method": "GRAD", "params": [0.5], "surrogate_epochs": 1}
KNOCKOFF = {"arch": "lenet5fifth", "epochs": 1, "batch_size": 64, "lr": 0.05}
ENSEMBLE = {
    "dataset": "digits",
    "transfer_sets": ["photos"],
    "arch": "lenet5fifth",
    "misleader": {
        "teacher": "v",
        "members": [{"arch": "lenet5fifth", "lam": 0.5, "T": 2, "alpha": 0.3}] * 2,
        "train": {"epochs": 1, "batch_size": 128, "lr": 0.05, "a_iter": 1},
    },
}
TIMINGS = set(TIMING_KEYS)


def trained(name: str, cfg: dict, model: str, metrics: str) -> dict:
    """The victim fields and model outputs of a request (ModelOutputs)."""
    return {"victim": name, "victim_cfg": cfg, "out_model": model, "out_metrics": metrics}


def run_stage(stage_fn, request_cls, **fields) -> dict:
    """Run a stage on a request with the common data/seed/device fields; check its record's shape."""
    record = stage_fn(request_cls(**fields, **COMMON))
    _assert_record(record)
    return record


def _assert_record(record: dict) -> None:
    """The one metrics-record shape: every stage reports wall time and peak host and GPU memory."""
    assert {"wall_seconds", "peak_memory_mb", "peak_gpu_memory_mb", "device"} <= set(record)
    assert record["wall_seconds"] >= 0 and record["peak_memory_mb"] > 0


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stages")


def p(out: Path, pattern: str, **wc: str) -> str:
    return layout.path(str(out), pattern, **{"seed": SEED, **wc})


@pytest.fixture(scope="module")
def victim(out: Path) -> str:
    run_stage(
        victims.train_victim,
        victims.TrainVictimRequest,
        **trained(
            "v", VICTIM, p(out, layout.VICTIM_MODEL, victim="v"), p(out, layout.VICTIM_METRICS, victim="v")
        ),
        out_history=p(out, layout.VICTIM_HISTORY, victim="v"),
    )
    return p(out, layout.VICTIM_MODEL, victim="v")


def test_train_victim_writes_a_trained_fp32_victim(out: Path, victim: str) -> None:
    metrics = load_json(p(out, layout.VICTIM_METRICS, victim="v"))
    assert metrics["test_acc"] > 0.5  # ten short epochs on digits: well above chance (0.1)
    assert read_victim_info(victim).kind == "fp32"
    assert len(pd.read_csv(p(out, layout.VICTIM_HISTORY, victim="v"))) == VICTIM["train"]["epochs"]


@pytest.fixture(scope="module")
def surrogate(out: Path, victim: str) -> str:
    model = p(out, layout.SURROGATE_MODEL, victim="v", transfer="photos", epochs="1")
    record = run_stage(
        defender_models.train_surrogate,
        defender_models.SurrogateRequest,
        transfer="photos",
        epochs="1",
        transfer_cfg=TRANSFER,
        recipe={**RECIPE, "epochs": 2},
        batch_size=256,
        in_victim=victim,
        **trained(
            "v", VICTIM, model, p(out, layout.SURROGATE_METRICS, victim="v", transfer="photos", epochs="1")
        ),
    )
    assert record["stop_after_epochs"] == 1 and record["schedule_epochs"] == 2
    return model


def test_train_misinformation_puts_little_mass_on_the_true_class(out: Path) -> None:
    model = p(out, layout.MISINFORMATION_MODEL, victim="v")
    record = run_stage(
        defender_models.train_misinformation,
        defender_models.MisinformationRequest,
        recipe=RECIPE,
        **trained("v", VICTIM, model, p(out, layout.MISINFORMATION_METRICS, victim="v")),
    )
    assert record["test_acc"] < 0.1  # trained to avoid the true class: below chance
    assert read_victim_info(model).kind == "fp32"


@pytest.fixture(scope="module")
def dcp_answers(out: Path, victim: str) -> str:
    return answer(out, victim, DCP, "DCP")


def answer(out: Path, victim: str, defense_cfg: dict, defense: str, **aux: str) -> str:
    """Run answer_queries for ``defense`` on the photo transfer set; the posteriors' path."""
    path = p(out, layout.POSTERIORS, victim="v", transfer="photos", defense=defense)
    request = {"victim": "v", "victim_cfg": VICTIM, "transfer_cfg": TRANSFER, "batch_size": 64}
    run_stage(
        answers.answer_queries,
        answers.AnswerRequest,
        **request,
        defense_cfg=defense_cfg,
        in_victim=victim,
        in_aux=aux,
        out_posteriors=path,
    )
    return path


def test_answer_queries_answers_the_whole_sweep_from_one_pass(dcp_answers: str) -> None:
    a = load_arrays(dcp_answers)
    assert a["transfer"].shape == (2, 200, 10) and a["test"].shape[0] == 2
    np.testing.assert_allclose(a["transfer"].sum(-1), 1, atol=1e-5)
    assert a["l1_distance"][0] == 0 and a["l1_distance"][1] > 0  # β = 0 leaves the answers alone
    assert a["param_texts"].tolist() == ["0.0", "1.5"] and int(a["queries"]) == 200


def test_answer_queries_with_an_auxiliary_model(out: Path, victim: str, surrogate: str) -> None:
    a = load_arrays(answer(out, victim, GRAD, "GRAD", surrogate_e1=surrogate))
    assert 0 < a["l1_distance"][0] <= 0.5 + 1e-6  # GRAD stays inside its ε-ball


def _knockoff_request(dcp_answers: str, params: list[str], folder: Path) -> attacks.KnockoffRequest:
    return attacks.KnockoffRequest(
        victim="v",
        transfer="photos",
        defense="DCP",
        victim_cfg=VICTIM,
        transfer_cfg=TRANSFER,
        defense_cfg=DCP,
        knockoff=KNOCKOFF,
        params=params,
        in_posteriors=dcp_answers,
        out_metrics=str(folder / "metrics.json"),
        out_clones=str(folder / "clones"),
        **COMMON,
    )


def test_train_knockoff_one_value_and_the_whole_sweep_agree(out: Path, dcp_answers: str) -> None:
    single = {}
    for param in ("0.0", "1.5"):
        (record,) = attacks.train_knockoff(_knockoff_request(dcp_answers, [param], out / "single" / param))
        _assert_record(record)
        single[param] = record
    sweep = out / "sweep"
    records = attacks.train_knockoff(_knockoff_request(dcp_answers, ["0.0", "1.5"], sweep))
    assert load_json(sweep / "metrics.json") == records  # one file, one record per value
    for record in records:  # one process for the sweep gives each value's clone exactly
        alone = single[record["param"]]
        assert {k: v for k, v in record.items() if k not in TIMINGS} == {
            k: v for k, v in alone.items() if k not in TIMINGS
        }
        assert 0 <= record["clone_acc"] <= 1 and record["queries"] == 200
    a = (out / "single" / "1.5" / "clones" / "soft" / "1.5.safetensors").read_bytes()
    assert a == (sweep / "clones" / "soft" / "1.5.safetensors").read_bytes()  # byte-identical weights


def test_train_knockoff_trains_every_label_kind_in_one_job(out: Path, dcp_answers: str) -> None:
    soft = attacks.train_knockoff(_knockoff_request(dcp_answers, ["1.5"], out / "kinds_soft"))
    both = attacks.train_knockoff(
        dataclasses.replace(
            _knockoff_request(dcp_answers, ["1.5"], out / "kinds_both"),
            knockoff={**KNOCKOFF, "labels": ["soft", "argmax"]},
        )
    )
    assert [r["labels"] for r in both] == ["soft", "argmax"]
    clones = out / "kinds_both" / "clones"
    # the soft clone is the one a soft-only job trains; the argmax clone learns from other targets
    assert (clones / "soft" / "1.5.safetensors").read_bytes() == (
        out / "kinds_soft" / "clones" / "soft" / "1.5.safetensors"
    ).read_bytes()
    assert (clones / "argmax" / "1.5.safetensors").read_bytes() != (
        clones / "soft" / "1.5.safetensors"
    ).read_bytes()
    assert both[0]["clone_acc"] == soft[0]["clone_acc"]


def test_argmax_defenses_leaves_the_label_only_clone_out_for_other_defenses(
    out: Path, dcp_answers: str
) -> None:
    both = {**KNOCKOFF, "labels": ["soft", "argmax"]}
    request = _knockoff_request(dcp_answers, ["1.5"], out / "argmax_elsewhere")
    others = attacks.train_knockoff(
        dataclasses.replace(request, knockoff={**both, "argmax_defenses": ["undefended"]})
    )
    assert [r["labels"] for r in others] == ["soft"]  # DCP is not named: soft clones only
    assert not (out / "argmax_elsewhere" / "clones" / "argmax" / "1.5.safetensors").exists()
    assert label_kinds({**both, "argmax_defenses": ["DCP"]}, "DCP") == ("soft", "argmax")
    assert label_kinds({**both, "argmax_defenses": ["DCP"]}) == ("soft", "argmax")  # no defense: all kinds


def test_two_victims_meet_the_same_attacker_under_one_seed(out: Path, dcp_answers: str, monkeypatch) -> None:
    """The teacher's and the ensemble's clone (here: two victims answering differently) of one seed
    start from the same weights and see the same augmented images in the same order: the attack's
    streams do not depend on the victim, so teacher vs ensemble and fp32 vs int8 are paired."""
    import msdefense.attacks.knockoff as knockoff_module

    seen: dict[str, dict] = {}
    real_distill = knockoff_module.distill

    class Recording(torch.utils.data.Dataset):
        def __init__(self, base, log: list) -> None:
            self.base, self.log = base, log

        def __len__(self) -> int:
            return len(self.base)

        def __getitem__(self, i: int):
            x, y = self.base[i]
            self.log.append((i, round(float(x.sum()), 4)))
            return x, y

    def recording_distill(model, train_data, targets, recipe, **kw):
        entry = seen.setdefault(current, {"batches": []})
        entry["init"] = {k: v.clone() for k, v in model.state_dict().items()}
        entry["targets"] = targets.clone()
        return real_distill(model, Recording(train_data, entry["batches"]), targets, recipe, **kw)

    monkeypatch.setattr(knockoff_module, "distill", recording_distill)
    other = out / "other_victim_answers.npz"
    arrays = load_arrays(dcp_answers)
    arrays["transfer"] = np.ascontiguousarray(arrays["transfer"][..., ::-1])  # another victim's answers
    save_arrays(other, arrays)
    for current, answers_file in (("v", dcp_answers), ("m", str(other))):
        request = dataclasses.replace(
            _knockoff_request(answers_file, ["1.5"], out / "paired" / current), victim=current
        )
        attacks.train_knockoff(request)
    assert not torch.equal(seen["v"]["targets"], seen["m"]["targets"])  # different victims' answers
    for name, weight in seen["v"]["init"].items():
        assert torch.equal(weight, seen["m"]["init"][name]), name  # the same initial clone
    assert seen["v"]["batches"] == seen["m"]["batches"]  # the same images, augmentations and order


def test_a_budget_clone_saw_exactly_the_first_b_answers(out: Path, dcp_answers: str) -> None:
    """knockoff.budgets (train_knockoff_budgets): a clone per budget and value, from scratch on the
    first b queries of the attacker's order. Changing every other answer leaves it byte-identical;
    changing one of the first b changes it."""
    from msdefense.attacks.knockoff import query_order
    from msdefense.seeding import derive_seed
    from msdefense.stages import budgets

    def run(answers_file: str, name: str) -> tuple[list, bytes]:
        folder = out / "budget" / name
        sweep = _knockoff_request(answers_file, ["1.5"], folder)
        fields = {f.name: getattr(sweep, f.name) for f in dataclasses.fields(budgets.KnockoffBudgetRequest)
                  if f.name != "out_budgets"}  # fmt: skip
        request = budgets.KnockoffBudgetRequest(
            **{
                **fields,
                "knockoff": {**KNOCKOFF, "budgets": [0.25]},
                "out_clones": str(folder / "budget_clones"),
            },
            out_budgets=str(folder / "budgets.json"),
        )
        records = budgets.train_knockoff_budgets(request)
        assert load_json(folder / "budgets.json") == records
        return records, (folder / "budget_clones" / "50" / "1.5.safetensors").read_bytes()

    records, clone = run(dcp_answers, "as_answered")
    assert [(r["queries"], r["labels"], r["param"]) for r in records] == [(50, "soft", "1.5")]
    request = _knockoff_request(dcp_answers, ["1.5"], out / "unused")
    first = query_order(200, derive_seed(request.stream_seed, "query-order"))[:50]
    rest = np.setdiff1d(np.arange(200), first)
    arrays = load_arrays(dcp_answers)
    for name, rows in (("other_rest", rest), ("other_first", first[-1:])):
        changed = {k: v.copy() for k, v in arrays.items()}
        changed["transfer"][:, rows] = changed["transfer"][:, rows, ::-1]  # other answers to those queries
        save_arrays(out / f"{name}.npz", changed)
        records_changed, clone_changed = run(str(out / f"{name}.npz"), name)
        assert (clone_changed == clone) == (name == "other_rest"), name
        if name == "other_rest":
            assert records_changed[0]["clone_acc"] == records[0]["clone_acc"]


def test_a_job_trains_each_distinct_clone_once(out: Path, dcp_answers: str, monkeypatch) -> None:
    """Clones of one job share seed, data and recipe: two with the same targets are one clone. Where
    the second value's answers keep every query's top class of the first's, the label-only targets
    are the same: one argmax clone is trained for the sweep and stored at each value, identical to
    training it alone."""
    import msdefense.stages.attacks as stage_module

    arrays = load_arrays(dcp_answers)
    sharper = arrays["transfer"][0] ** 2
    arrays["transfer"][1] = sharper / sharper.sum(-1, keepdims=True)  # the same top classes
    save_arrays(out / "same_top.npz", arrays)
    answers_file = str(out / "same_top.npz")

    calls = []
    real = stage_module.run_knockoff

    def counting(answers, *args, **kwargs):
        calls.append(kwargs["desc"])
        return real(answers, *args, **kwargs)

    both = {**KNOCKOFF, "labels": ["soft", "argmax"]}
    request = dataclasses.replace(
        _knockoff_request(answers_file, ["0.0", "1.5"], out / "dedupe"), knockoff=both
    )
    monkeypatch.setattr(stage_module, "run_knockoff", counting)
    records = attacks.train_knockoff(request)
    assert [(r["labels"], r["param"]) for r in records] == [
        ("soft", "0.0"), ("soft", "1.5"), ("argmax", "0.0"), ("argmax", "1.5")
    ]  # fmt: skip
    assert len(calls) == 3 and not any("argmax labels" in c and "=1.5" in c for c in calls)
    clones = out / "dedupe" / "clones" / "argmax"
    assert (clones / "0.0.safetensors").read_bytes() == (clones / "1.5.safetensors").read_bytes()
    monkeypatch.setattr(stage_module, "run_knockoff", real)
    alone = attacks.train_knockoff(
        dataclasses.replace(_knockoff_request(answers_file, ["1.5"], out / "dedupe_alone"), knockoff=both)
    )
    assert (out / "dedupe_alone" / "clones" / "argmax" / "1.5.safetensors").read_bytes() == (
        clones / "1.5.safetensors"
    ).read_bytes()
    assert alone[1]["clone_acc"] == records[3]["clone_acc"]


def test_strongest_only_budgets_trains_the_strongest_value_alone(out: Path, dcp_answers: str) -> None:
    from msdefense.stages import budgets

    folder = out / "budget_strongest"
    sweep = _knockoff_request(dcp_answers, ["0.0", "1.5"], folder)
    fields = {f.name: getattr(sweep, f.name) for f in dataclasses.fields(budgets.KnockoffBudgetRequest)
              if f.name != "out_budgets"}  # fmt: skip
    request = budgets.KnockoffBudgetRequest(
        **{**fields, "knockoff": {**KNOCKOFF, "budgets": [0.25], "strongest_only": ["budgets"]}},
        out_budgets=str(folder / "budgets.json"),
    )
    records = budgets.train_knockoff_budgets(request)
    assert [(r["queries"], r["param"]) for r in records] == [(50, "1.5")]
    assert attacks.sweep_for(request, "soft") == ["0.0", "1.5"]  # the full-budget clones: every value


def test_knockoff_request_refuses_repeated_values(out: Path, dcp_answers: str) -> None:
    with pytest.raises(ValueError, match="distinct values"):
        _knockoff_request(dcp_answers, ["1.5", "1.5"], out / "bad")


def _datafree(out: Path, victim: str, dcp_answers: str, name: str) -> dict:
    run = out / "datafree" / name
    return attacks.run_datafree(
        attacks.DataFreeRequest(
            attack="dfme",
            victim="v",
            defense="DCP",
            param="1.5",
            victim_cfg=VICTIM,
            defense_cfg=DCP,
            attack_cfg={
                "preset": "dfme_cifar10",
                "query_budget": 1000,
                "batch_size": 16,
                "generator_width": 4,
                "eval_every": 2,
            },
            student="lenet5fifth",
            in_victim=victim,
            in_posteriors=dcp_answers,
            out_metrics=f"{run}/metrics.json",
            out_model=f"{run}/student.safetensors",
            out_history=f"{run}/history.csv",
            **COMMON,
        )
    )


def test_run_datafree_counts_every_query_and_repeats_itself(out: Path, victim: str, dcp_answers: str) -> None:
    first, second = _datafree(out, victim, dcp_answers, "a"), _datafree(out, victim, dcp_answers, "b")
    _assert_record(first)
    # cost 16·(2 + 5) = 112 per iteration: 8 iterations fit in 1000 queries, every one defended
    assert first["queries"] == first["oracle_queries"] == 8 * 112 <= 1000
    assert first["defender_acc"] == float(load_arrays(dcp_answers)["defender_acc"][1])
    # the same seed gives the same record (timings aside) and the same weights, byte for byte
    strip = lambda r: {k: v for k, v in r.items() if k not in TIMINGS}  # noqa: E731
    assert strip(first) == strip(second)
    root = out / "datafree"
    assert (root / "a" / "student.safetensors").read_bytes() == (
        root / "b" / "student.safetensors"
    ).read_bytes()


@pytest.fixture(scope="module")
def int8_victim(out: Path, victim: str) -> str:
    cfg = {"dataset": "digits", "transfer_sets": ["photos"], "arch": "lenet5fifth"}
    cfg["quantize"] = {
        "source": "v",
        "mode": "ptq",
        "backend": "x86",
        "calibration_images": 64,
        "qat_epochs": 0,
    }
    cfg["quantize"] |= {"qat_lr": 0.001, "qat_batch_size": 64}
    path = p(out, layout.VICTIM_MODEL, victim="q")
    record = run_stage(
        victims.quantize_victim,
        victims.QuantizeVictimRequest,
        in_source=victim,
        **trained("q", cfg, path, p(out, layout.VICTIM_METRICS, victim="q")),
    )
    assert record["agreement_with_source"] > 0.9 and record["size_mb"] < 0.4 * record["source_size_mb"]
    return path


def test_quantize_victim_stores_an_int8_victim(int8_victim: str) -> None:
    model, info = read_victim(int8_victim)
    assert (info.kind, info.source, info.arch) == ("int8", "v", "lenet5fifth")
    probs = torch.softmax(model(torch.zeros(2, 1, 32, 32)), -1)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))


def test_misleader_members_and_ensemble(out: Path, victim: str) -> None:
    members = []
    for i in range(2):
        model = p(out, layout.MEMBER_MODEL, victim="m", member=str(i))
        run_stage(
            victims.train_misleader_member,
            victims.MisleaderMemberRequest,
            member=str(i),
            in_teacher=victim,
            **trained("m", ENSEMBLE, model, p(out, layout.MEMBER_METRICS, victim="m", member=str(i))),
            out_history=p(out, layout.MEMBER_HISTORY, victim="m", member=str(i)),
        )
        members.append(model)
    path = p(out, layout.VICTIM_MODEL, victim="m")
    run_stage(
        victims.build_ensemble,
        victims.BuildEnsembleRequest,
        in_members=members,
        in_teacher_metrics=p(out, layout.VICTIM_METRICS, victim="v"),
        **trained("m", ENSEMBLE, path, p(out, layout.VICTIM_METRICS, victim="m")),
    )
    ensemble, info = read_victim(path)
    assert (info.kind, info.member_archs, info.source) == ("ensemble", ("lenet5fifth",) * 2, "v")
    x = torch.randn(3, 1, 32, 32)
    loaded = [read_victim(m)[0] for m in members]
    vote = torch.stack([torch.softmax(m(x), -1) for m in loaded]).mean(0)
    torch.testing.assert_close(torch.softmax(ensemble(x), -1), vote, atol=1e-6, rtol=0)


def test_measure_latency_of_a_victim_and_of_a_reference(out: Path, victim: str, int8_victim: str) -> None:
    spec = {"batch_sizes": [1, 4], "warmup": 0, "repeats": 2, "target_halfwidth": 0.05, "max_seconds": 0.1}
    defenses = {"undefended": {"method": "None", "params": [0.0]}, "DCP": DCP}
    for name, kwargs in (
        ("v", {"in_victim": [victim]}),
        ("q", {"in_victim": [int8_victim]}),
        (
            "ref",
            {"reference": {"arch": "lenet5fifth", "num_classes": 10, "in_channels": 1, "image_size": 32}},
        ),
    ):
        rows = latency.measure_latency(
            latency.LatencyRequest(
                victim=name,
                defenses=defenses,
                latency=spec,
                out_latency=p(out, layout.LATENCY, victim=name),
                seed=SEED,
                device="cpu",
                **kwargs,
            )
        )
        assert {(r["defense"], r["batch_size"]) for r in rows} == {(d, b) for d in defenses for b in (1, 4)}
        _assert_record(rows[0])
    with pytest.raises(ValueError, match="needs a trained victim or a reference"):
        latency.measure_latency(
            latency.LatencyRequest(victim="x", defenses=defenses, latency=spec, out_latency="x", seed=0)
        )


def test_table_stages_build_tables_and_figures(out: Path) -> None:
    metrics = [str(out / "sweep" / "metrics.json")]
    t = out / "tables"
    tables.knockoff_tables(
        tables.KnockoffTablesRequest(
            in_metrics=metrics,
            **{
                f"out_{k}": str(t / f"{k}.x")
                for k in ("csv", "md", "seeds", "interpolation", "interpolation_md", "interpolation_seeds")
            },
            out_png=str(t / "k.png"),
            out_pdf=str(t / "k.pdf"),
        )
    )
    table = pd.read_csv(t / "csv.x")
    assert table["param"].tolist() == [0.0, 1.5] and (t / "k.png").stat().st_size > 0
    assert table["n_seeds"].tolist() == [1, 1] and pd.read_csv(t / "seeds.x")["seed"].tolist() == [SEED, SEED]
    lat = [p(out, layout.LATENCY, victim=v) for v in ("v", "q", "ref")]
    tables.latency_table(
        tables.FigureTableRequest(
            in_metrics=lat,
            out_csv=str(t / "lat.csv"),
            out_md=str(t / "lat.md"),
            out_png=str(t / "lat.png"),
            out_pdf=str(t / "lat.pdf"),
        )
    )
    assert set(pd.read_csv(t / "lat.csv")["victim"]) == {"v", "q", "ref"}
    tables.quantization_table(
        tables.QuantizationTableRequest(
            in_victims=[p(out, layout.VICTIM_METRICS, victim="q")],
            in_latency=lat,
            out_csv=str(t / "quant.csv"),
            out_md=str(t / "quant.md"),
            out_seeds=str(t / "quant_seeds.csv"),
        )
    )
    assert set(pd.read_csv(t / "quant.csv")["precision"]) == {"fp32", "int8"}
    runs = sorted(str(m) for m in (out / "datafree").rglob("metrics.json"))
    tables.datafree_table(
        tables.SeedFigureTableRequest(
            in_metrics=runs[:1],
            out_csv=str(t / "df.csv"),
            out_md=str(t / "df.md"),
            out_seeds=str(t / "df_seeds.csv"),
            out_png=str(t / "df.png"),
            out_pdf=str(t / "df.pdf"),
        )
    )
    assert pd.read_csv(t / "df.csv")["attack"].tolist() == ["dfme"]


def test_prepare_dataset_names_the_missing_files(tmp_path: Path) -> None:
    from msdefense.data import DatasetMissingError

    with pytest.raises(DatasetMissingError, match="CUB_200_2011"):
        data.prepare_dataset(data.PrepareRequest(dataset="cub200", root=str(tmp_path)))


def _job(**sections) -> SimpleNamespace:
    named = {k: Namedlist(fromdict=sections.get(k, {})) for k in ("wildcards", "params", "input", "output")}
    return SimpleNamespace(**named, log=Namedlist(), threads=1)


def test_request_from_rule_maps_the_rule_by_name() -> None:
    job = _job(
        wildcards={"victim": "v", "transfer": "t", "epochs": "1"},
        params={"victim_cfg": VICTIM, "transfer_cfg": TRANSFER, "recipe": RECIPE, "batch_size": 8, **COMMON},
        input={"victim": "a.safetensors"},
        output={"model": "m.safetensors", "metrics": "m.json"},
    )
    request = request_from_rule(request_type(defender_models.train_surrogate), job)
    assert isinstance(request, defender_models.SurrogateRequest)
    assert (request.victim, request.in_victim, request.out_metrics) == ("v", "a.safetensors", "m.json")
    # a rule entry the request does not declare is refused, naming it
    job.params = Namedlist(fromdict={**dict(job.params.items()), "betta": 2})
    with pytest.raises(TypeError, match="betta"):
        request_from_rule(defender_models.SurrogateRequest, job)


def test_request_from_rule_zips_auxiliary_models() -> None:
    job = _job(
        wildcards={"victim": "v", "transfer": "t", "defense": "GRAD"},
        params={
            "victim_cfg": VICTIM,
            "transfer_cfg": TRANSFER,
            "defense_cfg": GRAD,
            "aux_names": ("surrogate_e1",),
            "batch_size": 8,
            **COMMON,
        },
        input={"victim": "a.safetensors", "aux": ["s.safetensors"]},
        output={"posteriors": "p.npz"},
    )
    request = request_from_rule(answers.AnswerRequest, job)
    assert request.in_aux == {"surrogate_e1": "s.safetensors"}


def test_requests_from_rule_gives_every_seed_its_share() -> None:
    """A job serving several seeds: seed i gets the i-th item (or group, for aux) of each per-seed
    entry; the other entries are shared."""
    params = {
        "victim_cfg": VICTIM,
        "transfer_cfg": TRANSFER,
        "defense_cfg": GRAD,
        "aux_names": ("surrogate_e1", "misinformation"),
        "batch_size": 8,
        "data": DATA,
        "device": "cpu",
        "seeds": [3, 5],
        "per_seed": ("victim", "aux", "posteriors"),
    }
    job = _job(
        wildcards={"victim": "v", "transfer": "t", "defense": "GRAD"},
        params=params,
        input={"victim": ["a3", "a5"], "aux": ["s3", "m3", "s5", "m5"]},
        output={"posteriors": ["p3.npz", "p5.npz"]},
    )
    got = [
        (r.seed, r.in_victim, r.in_aux, r.out_posteriors)
        for r in requests_from_rule(answers.AnswerRequest, job)
    ]
    assert got == [
        (3, "a3", {"surrogate_e1": "s3", "misinformation": "m3"}, "p3.npz"),
        (5, "a5", {"surrogate_e1": "s5", "misinformation": "m5"}, "p5.npz"),
    ]
    # one auxiliary model per seed: each seed's share is that one file
    single = _job(
        wildcards=dict(job.wildcards.items()),
        params={**params, "aux_names": ("surrogate_e1",)},
        input={"victim": ["a3", "a5"], "aux": ["s3", "s5"]},
        output={"posteriors": ["p3.npz", "p5.npz"]},
    )
    assert [r.in_aux for r in requests_from_rule(answers.AnswerRequest, single)] == [
        {"surrogate_e1": "s3"},
        {"surrogate_e1": "s5"},
    ]
    uneven = _job(
        wildcards=dict(job.wildcards.items()),
        params=params,
        input={"victim": ["a3", "a5", "a7"], "aux": []},
        output={"posteriors": ["p3.npz", "p5.npz"]},
    )
    with pytest.raises(TypeError, match="'victim' has 3 items, not a multiple of the 2 seeds"):
        requests_from_rule(answers.AnswerRequest, uneven)
    unknown = _job(
        wildcards=dict(job.wildcards.items()),
        params={**params, "per_seed": ("victim", "model")},
        input={"victim": ["a3", "a5"]},
        output={"posteriors": ["p3.npz", "p5.npz"]},
    )
    with pytest.raises(TypeError, match="'model'"):
        requests_from_rule(answers.AnswerRequest, unknown)


def test_run_rule_runs_a_stage_from_a_job(tmp_path: Path) -> None:
    job = _job(wildcards={"dataset": "cub200"}, params={"root": str(tmp_path)})
    job.log = Namedlist([str(tmp_path / "log.txt")])
    from msdefense.data import DatasetMissingError

    with pytest.raises(DatasetMissingError):
        run_rule(data.prepare_dataset, job)
    assert "CUB_200_2011" in (tmp_path / "log.txt").read_text()  # the traceback went to the log
