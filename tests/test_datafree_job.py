"""The run_datafree job end to end on the bundled digits: budget, probes counted, same seed →
the same metrics.json byte for byte (CPU)."""

from __future__ import annotations

from pathlib import Path

import torch

from msdefense import jobs
from msdefense.data import get_dataset_spec
from msdefense.io import load_json
from msdefense.models import build_model

DATA = {"root": "resources", "attacker_holdout": 0.3, "validation_fraction": 0.1}
VICTIM = {"dataset": "digits", "arch": "lenet5fifth", "transfer_sets": ["heldout"]}
TRANSFER = {"source": "heldout"}
DEFENSE = {"method": "DCP", "params": [0.0, 1.5], "gamma": 0.2, "nu": 1000.0, "clip_odds": True}
ATTACK = {
    "preset": "dfme_cifar10",
    "query_budget": 1000,
    "batch_size": 16,
    "generator_width": 4,
    "eval_every": 2,
}


def _victim_and_answers(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    spec = get_dataset_spec("digits")
    model = build_model("lenet5fifth", spec.num_classes, spec.in_channels)
    victim = tmp_path / "victim.safetensors"
    jobs.save_classifier(model, victim, "lenet5fifth", "digits")
    answers = tmp_path / "answers.npz"
    jobs.answer_queries(victim, VICTIM, TRANSFER, DEFENSE, DATA, 0, "cpu", 256, answers)
    return victim, answers


def _run(tmp_path: Path, victim: Path, answers: Path, out: str, attack: dict) -> dict:
    (tmp_path / out).mkdir()
    return jobs.run_datafree_attack(
        victim,
        answers,
        {"attack": "dfme", "victim": "v", "defense": "DCP"},
        "1.5",
        VICTIM,
        DEFENSE,
        attack,
        "lenet5fifth",
        DATA,
        0,
        "cpu",
        tmp_path / out / "metrics.json",
        tmp_path / out / "student.safetensors",
        tmp_path / out / "history.csv",
    )


def test_same_seed_gives_the_same_metrics_file_and_the_budget_holds(tmp_path: Path) -> None:
    victim, answers = _victim_and_answers(tmp_path)
    first = _run(tmp_path, victim, answers, "a", ATTACK)
    _run(tmp_path, victim, answers, "b", ATTACK)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
    # cost 16·(2 + 5) = 112 per iteration: 8 iterations fit in 1000 queries, every one defended
    assert first["queries"] == first["oracle_queries"] == 8 * 112 <= ATTACK["query_budget"]
    assert first["defender_acc"] == float(jobs.load_arrays(answers)["defender_acc"][1])
    assert 0 <= first["clone_acc"] <= 1 and first["best_val_acc"] >= 0
    saved = load_json(tmp_path / "a" / "metrics.json")
    assert saved["config"]["query_budget"] == 1000 and saved["preset"] == "dfme_cifar10"


def test_a_different_attack_seed_changes_the_run(tmp_path: Path) -> None:
    victim, answers = _victim_and_answers(tmp_path)
    a = _run(tmp_path, victim, answers, "a", ATTACK)
    b = _run(tmp_path, victim, answers, "b", {**ATTACK, "grad_epsilon": 1e-2})
    assert a["config"]["grad_epsilon"] != b["config"]["grad_epsilon"]
    assert (tmp_path / "a" / "history.csv").read_text() != (tmp_path / "b" / "history.csv").read_text()
