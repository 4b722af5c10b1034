"""An int8 victim behind each of the seven defenses, through the oracle: probability vectors,
the sweep's first value (0) returns the int8 victim's own posteriors."""

from __future__ import annotations

import pytest
import torch

from msdefense.defenses import build_defense, required_aux_models
from msdefense.models import build_model
from msdefense.oracle import Oracle, victim_posteriors
from msdefense.quantization import quantize_ptq

CONFIGS = {
    "None": {"method": "None", "params": [0.0]},
    "DCP": {"method": "DCP", "params": [0.0, 1.5], "gamma": 0.2, "nu": 1000.0, "clip_odds": True},
    "ReverseSigmoid": {"method": "ReverseSigmoid", "params": [0.0, 0.16], "gamma": 0.2},
    "AdaptiveMisinformation": {"method": "AdaptiveMisinformation", "params": [0.0, 0.7], "nu": 1000.0},
    "Random": {"method": "Random", "params": [0.0, 0.5]},
    "MAD": {"method": "MAD", "params": [0.0, 0.5], "variant": "simplified", "surrogate_epochs": 0},
    "GRAD": {"method": "GRAD", "params": [0.0, 0.5], "target": "all_ones", "surrogate_epochs": 1},
}


@pytest.fixture(scope="module")
def int8_victim():
    torch.manual_seed(0)
    fp32 = build_model("lenet5", 10, 1).eval()
    calib = [torch.randn(32, 1, 32, 32) for _ in range(4)]
    return quantize_ptq(fp32, "x86", calib, torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_every_defense_answers_on_an_int8_victim(int8_victim, method: str) -> None:
    cfg = CONFIGS[method]
    torch.manual_seed(1)
    aux = {name: build_model("lenet5", 10, 1).eval() for name in required_aux_models(cfg)}  # fp32 aux models
    defense = build_defense(cfg, "digits", aux, seed=0)
    x = torch.randn(16, 1, 32, 32)
    answers = Oracle(int8_victim, defense, cfg["params"]).answer_sweep(x)
    assert answers.shape == (len(cfg["params"]), 16, 10)
    assert (answers >= 0).all() and torch.allclose(
        answers.sum(-1), torch.ones(len(cfg["params"]), 16), atol=1e-5
    )
    torch.testing.assert_close(answers[0], victim_posteriors(int8_victim, x))  # value 0 = undefended


@pytest.mark.parametrize("preset", ["dfme_cifar10", "maze_cifar10"])
def test_dfme_and_maze_run_against_a_defended_int8_victim(int8_victim, preset: str) -> None:
    from msdefense.attacks import PRESETS, run_datafree

    cfg = PRESETS[preset](query_budget=1500, batch_size=16, generator_width=4, replay_size=64, eval_every=2)
    defense = build_defense(CONFIGS["DCP"], "digits", {}, seed=0)
    oracle = Oracle(int8_victim, defense, [1.5], budget=1500)
    student = build_model("lenet5fifth", 10, 1)
    val = (torch.randn(20, 1, 32, 32), torch.randint(0, 10, (20,)))
    result = run_datafree(
        oracle, student, cfg, image_shape=(1, 32, 32), device="cpu", val_data=val, progress=False
    )
    assert result.iterations >= 1
    assert result.queries_used == oracle.queries_used == result.iterations * cfg.cost_per_iteration <= 1500
    assert all(torch.isfinite(p).all() for p in result.student.parameters())
