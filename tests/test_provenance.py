"""Valid files of the wrong run: each records where it belongs, and every reader refuses one read
from another place, naming both; wrong dtypes, duplicate JSON keys, impossible query counts and
compressed arrays are refused too."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from msdefense import layout, provenance
from msdefense.artifacts import ArtifactError, read_posteriors
from msdefense.io import save_arrays, save_json, save_tensors
from msdefense.models import build_model
from msdefense.records import read_record
from msdefense.victims import VictimInfo, read_victim, save_victim


def _at(root: Path, pattern: str, **wildcards: object) -> Path:
    return Path(layout.path(str(root / "results" / "exp"), pattern, **wildcards))


def _victim(path: Path, *, dtype: torch.dtype = torch.float32) -> None:
    model = build_model("lenet5fifth", 10, 1)
    info = VictimInfo.of_dataset(kind="fp32", arch="lenet5fifth", dataset="digits")
    if dtype == torch.float32:
        save_victim(model, path, info)
    else:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
        save_tensors(tensors, path, info.to_metadata())


def _answers(path: Path, *, compress: bool = False) -> None:
    e, n, m, k = 1, 6, 4, 10
    probs = np.full((e, n, k), 0.1, dtype=np.float32)
    arrays = {
        "params": np.array([0.5]), "param_texts": np.array(["0.5"]), "transfer": probs,
        "test": np.full((e, m, k), 0.1, dtype=np.float32), "test_labels": np.arange(m),
        "victim_test_pred": np.arange(m), "l1_distance": np.zeros(e), "defender_acc": np.ones(e),
        "queries": np.array(n),
    }  # fmt: skip
    save_arrays(path, arrays)
    if compress:  # the same arrays plus a large zero block, deflated: small file, large unpacking
        with np.load(path) as data:
            content = {key: data[key] for key in data.files}
        content["padding"] = np.zeros(5_000_000, dtype=np.float32)
        np.savez_compressed(path, **content)


def test_every_artifact_records_where_it_belongs(tmp_path: Path) -> None:
    weights = _at(tmp_path, layout.VICTIM_MODEL, seed=3, victim="v")
    _victim(weights)
    answers = _at(tmp_path, layout.POSTERIORS, seed=3, victim="v", transfer="t", defense="DCP")
    _answers(answers)
    record = _at(tmp_path, layout.VICTIM_METRICS, seed=3, victim="v")
    save_json(
        {"victim": "v", "test_acc": 0.9, "val_acc": 0.9, "seed": 3, "dataset": "digits", "arch": "a"}, record
    )
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as fh:
        stamped = json.loads(fh.metadata()["provenance"])
    with np.load(answers) as data:
        in_answers = json.loads(str(data["provenance"]))
    in_record = json.loads(record.read_text())["provenance"]
    assert stamped == {"experiment": "exp", "rule": "train_victim or quantize_victim or build_ensemble",
                       "seed": "3", "victim": "v"}  # fmt: skip
    assert in_answers["defense"] == "DCP" and in_answers["rule"] == "answer_queries"
    assert in_record["seed"] == "3"
    read_victim(weights)
    read_posteriors(answers)
    read_record(record, "victim")


def test_seed_4s_weights_copied_over_seed_3s_are_refused_naming_both(tmp_path: Path) -> None:
    four, three = (_at(tmp_path, layout.VICTIM_MODEL, seed=s, victim="v") for s in (4, 3))
    _victim(four)
    three.parent.mkdir(parents=True)
    shutil.copy(four, three)
    with pytest.raises(ArtifactError, match=r"belongs to seed '4'.*read as the file of seed '3'"):
        read_victim(three)


def test_a_symlink_to_another_victims_answers_is_refused(tmp_path: Path) -> None:
    theirs = _at(tmp_path, layout.POSTERIORS, seed=0, victim="other", transfer="t", defense="DCP")
    _answers(theirs)
    mine = _at(tmp_path, layout.POSTERIORS, seed=0, victim="v", transfer="t", defense="DCP")
    mine.parent.mkdir(parents=True)
    mine.symlink_to(theirs)
    with pytest.raises(ArtifactError, match=r"belongs to victim 'other'.*victim 'v'"):
        read_posteriors(mine)


def test_one_misleader_member_copied_over_another_is_refused(tmp_path: Path) -> None:
    first, second = (_at(tmp_path, layout.MEMBER_MODEL, seed=0, victim="ens", member=i) for i in (0, 1))
    _victim(first)
    second.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(first, second)
    with pytest.raises(ArtifactError, match=r"belongs to member '0'.*member '1'"):
        read_victim(second)


def test_a_record_naming_another_victim_is_refused(tmp_path: Path) -> None:
    path = _at(tmp_path, layout.VICTIM_METRICS, seed=0, victim="v")
    save_json({"victim": "v", "test_acc": 0.9, "val_acc": 0.9, "seed": 0, "dataset": "d", "arch": "a"}, path)
    text = json.loads(path.read_text())
    path.write_text(json.dumps({**text, "victim": "phantom"}))  # a table would show a phantom row
    with pytest.raises(ArtifactError, match=r"victim 'phantom' where its path says 'v'"):
        read_record(path, "victim")


def test_a_file_without_provenance_is_refused(tmp_path: Path) -> None:
    path = _at(tmp_path, layout.VICTIM_METRICS, seed=0, victim="v")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"victim": "v", "test_acc": 0.9, "val_acc": 0.9, "seed": 0}))
    with pytest.raises(ArtifactError, match="records no provenance"):
        read_record(path, "victim")


def test_a_duplicate_json_key_is_refused(tmp_path: Path) -> None:
    path = _at(tmp_path, layout.VICTIM_METRICS, seed=0, victim="v")
    save_json({"victim": "v", "test_acc": 0.5, "val_acc": 0.5, "seed": 0}, path)
    path.write_text(path.read_text().replace('"test_acc": 0.5', '"test_acc": 0.5, "test_acc": 0.99'))
    with pytest.raises(ArtifactError, match="'test_acc' appears twice"):
        read_record(path, "victim")


def test_queries_beyond_the_budget_are_refused(tmp_path: Path) -> None:
    path = _at(
        tmp_path, layout.DATAFREE_METRICS, seed=0, attack="dfme", victim="v", defense="DCP", param="0.5"
    )
    record = {
        "attack": "dfme", "victim": "v", "defense": "DCP", "method": "DCP", "param": "0.5", "preset": "p",
        "oracle_view": "probabilities", "defender_acc": 0.9, "clone_acc": 0.4, "fidelity": 0.45,
        "clone_acc_final": 0.38, "fidelity_final": 0.4, "best_val_acc": 0.4, "seed": 0,
        "query_budget": 2000, "queries": 1900, "oracle_queries": 1900,
    }  # fmt: skip
    save_json(record, path)
    read_record(path, "datafree")
    save_json({**record, "queries": 10**9}, path)
    with pytest.raises(ArtifactError, match="queries 1000000000 exceeds query_budget 2000"):
        read_record(path, "datafree")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_weights_of_another_dtype_are_refused_not_cast(tmp_path: Path, dtype: torch.dtype) -> None:
    path = _at(tmp_path, layout.VICTIM_MODEL, seed=0, victim="v")
    _victim(path, dtype=dtype)
    with pytest.raises(ArtifactError, match=rf"another dtype than its model's \(first: .*{str(dtype)[6:]}"):
        read_victim(path)


def test_a_compressed_npz_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = _at(tmp_path, layout.POSTERIORS, seed=0, victim="v", transfer="t", defense="DCP")
    _answers(path, compress=True)
    with zipfile.ZipFile(path) as archive:
        assert sum(m.file_size for m in archive.infolist()) > 10 * path.stat().st_size
    with pytest.raises(ArtifactError, match="compressed"):
        read_posteriors(path)


def test_provenance_reads_the_wildcards_off_the_path() -> None:
    found = provenance.of_path("results/tiny/seed3/attacks/knockoff/v/t/DCP/clones/soft/0.5.safetensors")
    assert found == {"experiment": "tiny", "rule": "train_knockoff", "seed": "3", "victim": "v",
                     "transfer": "t", "defense": "DCP", "labels": "soft", "param": "0.5"}  # fmt: skip
    assert provenance.of_path("/tmp/elsewhere/model.safetensors") is None
