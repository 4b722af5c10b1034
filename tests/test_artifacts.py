"""Every artifact is checked as it is read: a corrupt one raises ArtifactError naming the file,
what is wrong and the rule that writes it; a valid one reads back unchanged.

The valid artifacts come from the package's own writers and stages (an untrained digits victim,
its DCP answers, a KnockoffNets sweep, latency rows); each corrupted copy is one way a file can
go wrong on disk or from a buggy writer.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_stages import DCP, SEED, _knockoff_request, answer, p

from msdefense import layout, reporting
from msdefense.artifacts import ArtifactError, read_posteriors, writers
from msdefense.io import load_arrays, load_json, save_arrays, save_json, save_tensors
from msdefense.misleader import Ensemble
from msdefense.models import build_model
from msdefense.pretrained import load_backbone, read_torchvision_weights
from msdefense.records import read_record, read_records
from msdefense.stages import answers, attacks, latency
from msdefense.victims import (
    VictimInfo,
    read_classifier,
    read_victim,
    read_victim_info,
    save_classifier,
    save_victim,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, str]:
    """Valid artifacts written by the package: victim, DCP answers, KnockoffNets metrics, latency."""
    out = tmp_path_factory.mktemp("artifacts")
    torch.manual_seed(0)
    victim = p(out, layout.VICTIM_MODEL, victim="v")
    save_classifier(build_model("lenet5fifth", 10, 1), victim, arch="lenet5fifth", dataset="digits")
    posteriors = answer(out, victim, DCP, "DCP")
    sweep = Path(p(out, layout.KNOCKOFF_SWEEP, victim="v", transfer="photos", defense="DCP"))
    attacks.train_knockoff(_knockoff_request(posteriors, ["1.5"], sweep))
    lat = p(out, layout.LATENCY, victim="v")
    latency.measure_latency(
        latency.LatencyRequest(
            victim="v",
            defenses={"undefended": {"method": "None", "params": [0.0]}, "DCP": DCP},
            latency={
                "batch_sizes": [1],
                "warmup": 0,
                "repeats": 2,
                "target_halfwidth": 0.5,
                "max_seconds": 0,
            },
            in_victim=[victim],
            out_latency=lat,
            seed=SEED,
            device="cpu",
        )
    )
    return {
        "victim": victim,
        "posteriors": posteriors,
        "knockoff": str(sweep / "metrics.json"),
        "latency": lat,
    }


def _copy(src: str, out: Path, pattern: str, **wc: str) -> Path:
    """A copy of ``src`` at the layout path ``pattern`` under ``out`` (what names its rule)."""
    dst = Path(p(out, pattern, **wc))
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


def _assert_names(err: pytest.ExceptionInfo[ArtifactError], path: Path, rule: str, what: str) -> None:
    text = str(err.value)
    assert str(path) in text, text
    assert f"rule {rule}" in text, text
    assert "snakemake --forcerun" in text, text
    assert re.search(what, text), text


# --- posteriors (answer_queries) ---------------------------------------------------------------


def _edit_arrays(edit: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        arrays = load_arrays(path)
        edit(arrays)
        save_arrays(path, arrays)

    return corrupt


def _set(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = fn(arrays[key].copy())

    return edit


def _poke(x: np.ndarray, value: float) -> np.ndarray:
    x[1, 7, 3] = value
    return x


def _negative(x: np.ndarray) -> np.ndarray:
    x[1, 5] = 0.0
    x[1, 5, :2] = [1.25, -0.25]  # still sums to 1
    return x


POSTERIOR_CASES = {
    "truncated": (lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]), "not a readable .npz"),
    "not_a_zip": (lambda f: f.write_text("transfer,test\n0.1,0.9\n"), "not a readable .npz"),
    "empty_file": (lambda f: f.write_bytes(b""), "not a readable .npz"),
    "missing_key": (_edit_arrays(lambda a: a.pop("transfer")), r"lacks the arrays \['transfer'\]"),
    "wrong_shape": (_edit_arrays(_set("transfer", lambda x: x[..., :-1])), "inconsistent shapes"),
    "sweep_mismatch": (_edit_arrays(_set("test", lambda x: x[:1])), r"'test' \(1, \d+, 10\) where \(2, "),
    "nan": (_edit_arrays(_set("transfer", lambda x: _poke(x, np.nan))), "1 of 200 rows hold NaN or infinite"),
    "inf": (_edit_arrays(_set("test", lambda x: _poke(x, np.inf))), "NaN or infinite"),
    "all_nan": (
        _edit_arrays(_set("transfer", lambda x: np.full_like(x, np.nan))),
        "200 of 200 rows hold NaN",
    ),
    "negative": (_edit_arrays(_set("transfer", _negative)), "negative probabilities"),
    "integer": (
        _edit_arrays(_set("transfer", lambda x: (x == x.max(-1, keepdims=True)).astype(np.int64))),
        "'transfer' has dtype int64, not a floating-point dtype",
    ),
    "not_normalised": (_edit_arrays(_set("test", lambda x: x * 0.5)), "rows do not sum to 1"),
    "label_out_of_range": (_edit_arrays(_set("test_labels", lambda y: y + 10)), r"classes outside \[0, 10\)"),
    "float_labels": (
        _edit_arrays(_set("victim_test_pred", lambda y: y.astype(np.float32))),
        "not an integer dtype",
    ),
    "defender_acc_above_1": (_edit_arrays(_set("defender_acc", lambda x: x + 1)), "outside"),
    "queries_mismatch": (_edit_arrays(_set("queries", lambda q: q + 1)), "answers 200 queries"),
    "stale_sweep": (_edit_arrays(_set("param_texts", lambda t: np.array(["0.0", "2.0"]))), "no answers for"),
}


@pytest.mark.parametrize("case", sorted(POSTERIOR_CASES))
def test_corrupt_posteriors_name_the_file_and_answer_queries(made, tmp_path: Path, case: str) -> None:
    corrupt, what = POSTERIOR_CASES[case]
    path = _copy(
        made["posteriors"], tmp_path, layout.POSTERIORS, victim="v", transfer="photos", defense="DCP"
    )
    corrupt(path)
    with pytest.raises(ArtifactError) as err:
        answers.load_answers(str(path), "1.5")  # what run_datafree reads
    _assert_names(err, path, "answer_queries", what)
    assert "snakemake --forcerun answer_queries" in str(err.value)


def test_nan_posteriors_stop_knockoff_before_a_clone_is_trained(made, tmp_path: Path) -> None:
    path = _copy(
        made["posteriors"], tmp_path, layout.POSTERIORS, victim="v", transfer="photos", defense="DCP"
    )
    _edit_arrays(_set("transfer", lambda x: np.full_like(x, np.nan)))(path)
    with pytest.raises(ArtifactError) as err:
        attacks.train_knockoff(_knockoff_request(str(path), ["1.5"], tmp_path / "sweep"))
    _assert_names(err, path, "answer_queries", "NaN")
    assert not (tmp_path / "sweep").exists()  # nothing trained, nothing written


def test_posteriors_round_trip_unchanged(made) -> None:
    raw, read = load_arrays(made["posteriors"]), read_posteriors(made["posteriors"], ["0.0", "1.5"])
    assert "provenance" in raw  # checked against the path, then left out of what the reader gives
    assert read.keys() == raw.keys() - {"provenance"}
    for key, value in read.items():
        assert read[key].dtype == value.dtype
        np.testing.assert_array_equal(read[key], value)
    loaded, e = answers.load_answers(made["posteriors"], "1.5")
    assert e == 1 and loaded.keys() == read.keys()


# --- weights (the victim store) ----------------------------------------------------------------


def _resave(transform: Callable[[dict, dict], tuple[dict, dict | None]]) -> Callable[[Path], None]:
    """Rewrite a stored model with ``transform(tensors, metadata)``."""

    def corrupt(path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            tensors, meta = {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()  # noqa: SIM118
        tensors, meta = transform(tensors, meta)
        save_tensors(tensors, path, meta)

    return corrupt


def _other_arch(tensors: dict, meta: dict) -> tuple[dict, dict]:
    return build_model("lenet5half", 10, 1).state_dict(), meta  # lenet5fifth in the metadata


def _drop_one(tensors: dict, meta: dict) -> tuple[dict, dict]:
    return dict(list(tensors.items())[1:]), meta


def _nan_weight(tensors: dict, meta: dict) -> tuple[dict, dict]:
    key = next(k for k, t in tensors.items() if t.is_floating_point())
    return {**tensors, key: torch.full_like(tensors[key], float("nan"))}, meta


WEIGHT_CASES = {
    "truncated": (lambda f: f.write_bytes(f.read_bytes()[:-100]), "not a readable safetensors file"),
    "header_only": (lambda f: f.write_bytes(f.read_bytes()[:20]), "not a readable safetensors file"),
    "not_safetensors": (
        lambda f: f.write_text("{'state_dict': 'pickle?'}" * 4),
        "not a readable safetensors",
    ),
    "wrong_shapes": (_resave(_other_arch), "does not load into its fp32 lenet5fifth model .*size mismatch"),
    "missing_tensor": (_resave(_drop_one), "does not load .*Missing key"),
    "missing_metadata": (_resave(lambda t, m: (t, None)), "lacks the metadata key 'kind'"),
    "bad_metadata": (_resave(lambda t, m: (t, {**m, "num_classes": "ten"})), "invalid metadata"),
    "nan_weights": (_resave(_nan_weight), "NaN or infinite weights"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_CASES))
def test_corrupt_victim_weights_name_the_file_and_train_victim(made, tmp_path: Path, case: str) -> None:
    corrupt, what = WEIGHT_CASES[case]
    path = _copy(made["victim"], tmp_path, layout.VICTIM_MODEL, victim="v")
    corrupt(path)
    with pytest.raises(ArtifactError) as err:
        read_classifier(path, pattern=layout.VICTIM_MODEL)  # an fp32 victim: train_victim makes it
    _assert_names(err, path, "train_victim", what)
    with pytest.raises(ArtifactError) as err:  # any kind, the rule from the path: a trained victim
        read_victim(path)
    assert str(path) in str(err.value) and "train_victim" in str(err.value)


def test_corrupt_member_names_train_misleader_member(made, tmp_path: Path) -> None:
    path = _copy(made["victim"], tmp_path, layout.MEMBER_MODEL, victim="m", member="0")
    _resave(_other_arch)(path)
    with pytest.raises(ArtifactError) as err:
        read_classifier(path)  # the rule from the path's pattern
    _assert_names(err, path, "train_misleader_member", "size mismatch")


def test_a_model_of_the_wrong_kind_names_its_rule(made, tmp_path: Path) -> None:
    path = _copy(made["victim"], tmp_path, layout.VICTIM_MODEL, victim="q")
    with pytest.raises(ArtifactError) as err:
        read_victim(path, kinds=("int8",))
    _assert_names(err, path, "train_victim", "holds a fp32 model where int8 is expected")


def test_unreadable_imagenet_weights_name_prepare_weights(tmp_path: Path) -> None:
    path = tmp_path / "weights" / "resnet34_imagenet.pth"
    path.parent.mkdir()
    path.write_bytes(b"PK not a torch file")
    with pytest.raises(ArtifactError) as err:
        load_backbone(build_model("lenet5fifth", 10, 1), path, arch="resnet34_imagenet")
    _assert_names(err, path, "prepare_weights", "not a readable torchvision state dict")


def test_weights_round_trip_unchanged(made, tmp_path: Path) -> None:
    model, info = read_victim(made["victim"])
    assert (
        info
        == read_victim_info(made["victim"])
        == VictimInfo.of_dataset(kind="fp32", arch="lenet5fifth", dataset="digits")
    )
    torch.manual_seed(0)  # the fixture's victim
    expected = build_model("lenet5fifth", 10, 1).state_dict()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in expected.items()) and not model.training
    members = [build_model("lenet5fifth", 10, 1) for _ in range(2)]
    path = tmp_path / "ensemble.safetensors"
    save_victim(
        Ensemble(members),
        path,
        VictimInfo.of_dataset(
            kind="ensemble", arch="lenet5fifth", dataset="digits", member_archs=("lenet5fifth",) * 2
        ),
    )
    ensemble, info = read_victim(path)
    assert info.member_archs == ("lenet5fifth",) * 2
    for mine, stored in zip(members, ensemble.members, strict=True):
        assert all(torch.equal(v, stored.state_dict()[k]) for k, v in mine.state_dict().items())
    state = {"conv1.weight": torch.randn(4, 3, 7, 7), "bn1.num_batches_tracked": torch.tensor(3)}
    torch.save(state, tmp_path / "w.pth")
    back = read_torchvision_weights(tmp_path / "w.pth")
    assert back.keys() == state.keys() and all(torch.equal(back[k], v) for k, v in state.items())


def test_an_ensemble_with_stray_tensors_is_refused(tmp_path: Path) -> None:
    members = [build_model("lenet5fifth", 10, 1) for _ in range(2)]
    path = tmp_path / "ensemble.safetensors"
    info = VictimInfo.of_dataset(
        kind="ensemble", arch="lenet5fifth", dataset="digits", member_archs=("lenet5fifth",)
    )
    tensors = {f"member{i}.{k}": v for i, m in enumerate(members) for k, v in m.state_dict().items()}
    save_tensors(tensors, path, info.to_metadata())  # two members' tensors, one member declared
    with pytest.raises(ArtifactError, match="belong to none of the 1 members") as err:
        read_victim(path, pattern=layout.VICTIM_MODEL)
    _assert_names(err, path, "build_ensemble", "ensemble")


# --- metrics records ---------------------------------------------------------------------------


def _edit_json(edit: Callable[[object], object]) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        save_json(edit(json.loads(path.read_text())), path)

    return corrupt


def _first(**changes: object) -> Callable[[object], object]:
    """Change (``None``: drop) fields of the first record of a list."""

    def edit(records: object) -> object:
        assert isinstance(records, list)
        record = dict(records[0])
        for key, value in changes.items():
            if value is None:
                record.pop(key)
            else:
                record[key] = value
        return [record, *records[1:]]

    return edit


KNOCKOFF_CASES = {
    "not_json": (lambda f: f.write_text(f.read_text()[:-40]), "not valid JSON"),
    "binary": (lambda f: f.write_bytes(b"\xff\xfe\x00garbage"), "not valid JSON"),
    "missing_clone_acc": (_edit_json(_first(clone_acc=None)), r"lacks the keys \['clone_acc'\]"),
    "string_clone_acc": (
        _edit_json(_first(clone_acc="0.8")),
        r"'clone_acc' is '0.8', expected a finite number",
    ),
    "nan_clone_acc": (_edit_json(_first(clone_acc=float("nan"))), "'clone_acc' is nan"),
    "clone_acc_1.7": (
        _edit_json(_first(clone_acc=1.7)),
        r"'clone_acc' is 1.7, expected a finite number in \[0, 1\]",
    ),
    "negative_fidelity": (_edit_json(_first(fidelity=-0.1)), "'fidelity' is -0.1"),
    "bool_queries": (_edit_json(_first(queries=True)), "'queries' is True, expected an integer"),
    "bad_param": (_edit_json(_first(param="large")), "'param' is 'large'"),
    "repeated_record": (_edit_json(lambda r: [*r, *r]), "record 1 repeats the setting"),
    "one_record_not_a_list": (_edit_json(lambda r: r[0]), "not a list of KnockoffNets metrics records"),
    "empty_list": (_edit_json(lambda r: []), "holds an empty list"),
}


@pytest.mark.parametrize("case", sorted(KNOCKOFF_CASES))
def test_corrupt_knockoff_metrics_name_the_file_and_train_knockoff(made, tmp_path: Path, case: str) -> None:
    corrupt, what = KNOCKOFF_CASES[case]
    path = _copy(
        made["knockoff"], tmp_path, layout.KNOCKOFF_METRICS, victim="v", transfer="photos", defense="DCP"
    )
    corrupt(path)
    with pytest.raises(ArtifactError) as err:
        reporting.knockoff_seeds([str(path)])
    _assert_names(err, path, "train_knockoff", what)
    assert "snakemake --forcerun train_knockoff" in str(err.value)


def test_a_sweep_copied_to_another_place_is_refused_naming_both_settings(made, tmp_path: Path) -> None:
    """The same records under a second path (a table would count the setting twice): the copy's
    provenance names where it belongs."""
    copy = _copy(
        made["knockoff"], tmp_path, layout.KNOCKOFF_METRICS, victim="v", transfer="photos", defense="DCP"
    )
    with pytest.raises(ArtifactError) as err:
        reporting.knockoff_seeds([made["knockoff"], str(copy)])
    _assert_names(err, copy, "train_knockoff", "another run's file")
    assert "experiment 'test_a_sweep_copied_to_another0'" in str(err.value)


def _datafree_record(**changes: object) -> dict:
    record = {
        "attack": "dfme", "victim": "v", "defense": "DCP", "method": "DCP", "param": "1.5", "preset": "dfme_cifar10",
        "oracle_view": "probabilities", "defender_acc": 0.9, "clone_acc": 0.4, "fidelity": 0.45,
        "clone_acc_final": 0.38, "fidelity_final": 0.4, "best_val_acc": float("nan"), "queries": 896, "seed": SEED,
        "test_images": 359,
    }  # fmt: skip
    return {**record, **changes}


def _ensemble_record(**changes: object) -> dict:
    return {"victim": "m", "teacher": "v", "dataset": "digits", "seed": SEED, "test_acc": 0.8, **changes}


def _int8_record(**changes: object) -> dict:
    record = {
        "victim": "q", "source": "v", "precision": "int8", "backend": "x86", "mode": "ptq", "test_acc": 0.9,
        "source_test_acc": 0.91, "size_mb": 0.06, "source_size_mb": 0.24, "seed": SEED,
    }  # fmt: skip
    return {**record, **changes}


def _datafree_table(paths: list[str]) -> object:
    return reporting.datafree_seeds(paths)


def _latency_table(paths: list[str]) -> object:
    return reporting.latency_table(paths)


def _quantization_table(paths: list[str]) -> object:
    return reporting.quantization_seeds(paths, [])


def _misleader_table(paths: list[str]) -> object:
    no_runs = pd.DataFrame(columns=["victim", "transfer", "labels", "defense", "method", "seed"])
    return reporting.misleader_seeds(paths, no_runs, None)


RECORD_CASES = {
    # kind: (pattern, wildcards, valid record(s), table reader, rule)
    "datafree_queries_negative": (
        layout.DATAFREE_METRICS, _datafree_record(queries=-5), _datafree_table, "run_datafree", "'queries' is -5"
    ),
    "datafree_defender_acc_nan": (
        layout.DATAFREE_METRICS, _datafree_record(defender_acc=float("nan")), _datafree_table, "run_datafree",
        "'defender_acc' is nan",
    ),
    "datafree_list": (
        layout.DATAFREE_METRICS, [_datafree_record()], _datafree_table, "run_datafree", "holds a JSON list",
    ),
    "int8_accuracy_percent": (
        layout.VICTIM_METRICS, _int8_record(test_acc=90.0), _quantization_table, "quantize_victim",
        "'test_acc' is 90.0",
    ),
    "int8_fp32_record": (
        layout.VICTIM_METRICS, _int8_record(precision="fp32"), _quantization_table, "quantize_victim",
        "'precision' is 'fp32'",
    ),
    "ensemble_missing_teacher": (
        layout.VICTIM_METRICS, {k: v for k, v in _ensemble_record().items() if k != "teacher"}, _misleader_table,
        "build_ensemble", r"lacks the keys \['teacher'\]",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_corrupt_records_of_other_tables_name_their_rule(tmp_path: Path, case: str) -> None:
    pattern, record, table, rule, what = RECORD_CASES[case]
    path = Path(p(tmp_path, pattern, attack="dfme", victim="v", defense="DCP", param="1.5"))
    save_json(record, path)
    with pytest.raises(ArtifactError) as err:
        table([str(path)])
    _assert_names(err, path, rule, what)


LATENCY_CASES = {
    "negative_ms": (_edit_json(_first(ms_per_query=-1.0)), "'ms_per_query' is -1.0"),
    "missing_overhead": (_edit_json(_first(overhead_vs_none=None)), r"lacks the keys \['overhead_vs_none'\]"),
    "repeated_row": (_edit_json(lambda r: [*r, r[0]]), "repeats the setting"),
}


@pytest.mark.parametrize("case", sorted(LATENCY_CASES))
def test_corrupt_latency_names_measure_latency(made, tmp_path: Path, case: str) -> None:
    corrupt, what = LATENCY_CASES[case]
    path = _copy(made["latency"], tmp_path, layout.LATENCY, victim="v")
    corrupt(path)
    with pytest.raises(ArtifactError) as err:
        reporting.latency_table([str(path)])
    _assert_names(err, path, "measure_latency", what)


def test_teacher_metrics_without_accuracy_name_train_victim(tmp_path: Path) -> None:
    path = Path(p(tmp_path, layout.VICTIM_METRICS, victim="v"))
    save_json({"victim": "v", "dataset": "digits", "arch": "lenet5fifth", "seed": SEED}, path)
    with pytest.raises(ArtifactError) as err:
        read_record(path, "victim", require=("test_acc",))  # what build_ensemble reads of its teacher
    _assert_names(err, path, "train_victim", r"lacks the keys \['test_acc'\]")


@pytest.mark.parametrize(
    ("kind", "pattern", "record"),
    [
        ("datafree", layout.DATAFREE_METRICS, _datafree_record()),
        ("quantized_victim", layout.VICTIM_METRICS, _int8_record()),
        ("ensemble", layout.VICTIM_METRICS, _ensemble_record(member_test_acc=[0.7, 0.75])),
        ("victim", layout.VICTIM_METRICS, {"victim": "v", "test_acc": 0.93, "val_acc": None, "seed": SEED}),
    ],
)
def test_single_records_round_trip_unchanged(tmp_path: Path, kind: str, pattern: str, record: dict) -> None:
    path = p(tmp_path, pattern, attack="dfme", victim=record["victim"], defense="DCP", param="1.5")
    save_json(record, path)
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # noqa: E731 (NaN too)
    assert same(read_record(path, kind), record) and same(read_records([path], kind), [record])


def test_record_lists_round_trip_unchanged(made) -> None:
    for kind in ("knockoff", "latency"):
        stored = [{k: v for k, v in r.items() if k != "provenance"} for r in load_json(made[kind])]
        assert read_records([made[kind]], kind) == stored
    per_seed = reporting.knockoff_seeds([made["knockoff"]])
    assert per_seed["clone_acc"].tolist() == [load_json(made["knockoff"])[0]["clone_acc"]]


# --- the error itself and the rules it names ----------------------------------------------------


def test_artifact_error_is_a_value_error_that_pickles() -> None:
    err = ArtifactError("results/x/seed0/posteriors/v/t/d.npz", "is broken", ("answer_queries",))
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.rules == ("answer_queries",)
    assert "`snakemake --forcerun elsewhere.npz`" in str(ArtifactError("elsewhere.npz", "is broken"))


def test_writers_follow_the_path_and_the_victim_kind() -> None:
    out = "results/tiny"
    assert writers(p(out, layout.POSTERIORS, victim="v", transfer="t", defense="d")) == ("answer_queries",)
    assert (
        writers(
            p(out, layout.KNOCKOFF_CLONE, victim="v", transfer="t", defense="d", labels="soft", param="0.5")
        )[0]
        == "train_knockoff"
    )
    victim = p(out, layout.VICTIM_MODEL, victim="v")
    assert writers(victim) == ("train_victim", "quantize_victim", "build_ensemble")
    assert writers(victim, victim_kind="int8") == ("quantize_victim",)
    assert writers(layout.WEIGHTS_FILE.format(root="resources", arch="resnet34_imagenet")) == (
        "prepare_weights",
    )
    assert writers("somewhere/else.npz") == ()


def _rule_outputs() -> dict[str, set[str]]:
    """The layout patterns in each rule's ``output:`` section of rules/*.smk."""
    outputs: dict[str, set[str]] = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M):
            name = re.match(r"rule (\w+):", block)
            section = re.search(r"^    output:\n(.*?)(?=^    \w+:)", block, flags=re.M | re.S)
            if name and section:
                outputs[name[1]] = {getattr(layout, n) for n in re.findall(r"layout\.([A-Z_]+)", section[1])}
    return outputs


def test_layout_writers_match_the_rules() -> None:
    outputs = _rule_outputs()
    for pattern, rules in layout.WRITERS.items():
        for rule in rules:
            written = outputs[rule]
            assert any(pattern == w or pattern.startswith(w + "/") for w in written), (pattern, rule)
    for rule, written in outputs.items():
        for pattern in written & set(layout.WRITERS):
            assert rule in layout.WRITERS[pattern], (rule, pattern)


def test_stages_and_tables_read_through_the_artifact_readers() -> None:
    """No raw reader of npz, JSON or weights is left where the rules' artifacts are read: the checked
    readers live in artifacts.py and records.py (arrays, records), victims.py (the victim store) and
    pretrained.py (ImageNet weights)."""
    raw = re.compile(r"\b(load_arrays|load_json|safe_open|torch\.load|np\.load)\(")
    src = ROOT / "src" / "msdefense"
    readers = [
        *src.glob("stages/*.py"),
        *src.glob("attacks/*.py"),
        *src.glob("misleader/*.py"),
        *src.glob("quantization/*.py"),
        src / "latency.py",
        src / "reporting" / "tables.py",
        src / "models" / "imagenet.py",
    ]
    assert [str(f.relative_to(src)) for f in readers if raw.search(f.read_text())] == []
