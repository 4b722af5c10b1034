"""The defense-aware KnockoffNets attacker (msdefense.attacks.defense_aware; docs/methods.md):
its restorer undoes a defense it knows, it never queries the real oracle beyond the naive
attacker's answers, and against the undefended oracle it is the naive attacker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from workflow_runs import run_tiny

from msdefense.attacks import defense_aware
from msdefense.attacks.defense_aware import DefenseAwareConfig, fit_restorer, restore, restorers
from msdefense.defenses import build_defense
from msdefense.training import SGDRecipe


def confident_posteriors(n: int, k: int = 10, seed: int = 0) -> torch.Tensor:
    """Posteriors as a trained classifier gives them: mostly near-certain, some unsure."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g)
    logits[torch.arange(n), torch.randint(k, (n,), generator=g)] += torch.rand(n, generator=g) * 12
    return torch.softmax(logits, -1)


def test_a_restorer_undoes_dcp_on_posteriors_it_never_saw() -> None:
    clean = confident_posteriors(3000)
    defended = build_defense({"method": "DCP"}, "digits").perturb(None, clean, [1.5])[0]
    restorer, fit = fit_restorer(defended, clean, steps=1500, width=64, lr=1e-3, seed=0)
    assert fit["l1_defended"] > 1.0  # DCP at β 1.5 moves the answers far from the posteriors
    # not to 0: the answer does not tell the minor classes' order apart (docs/methods.md)
    assert fit["l1_restored"] < 0.35 * fit["l1_defended"]
    fresh = confident_posteriors(500, seed=1)  # other posteriors, the same defense
    answers = build_defense({"method": "DCP"}, "digits").perturb(None, fresh, [1.5])[0]
    restored = restore(restorer, answers)
    assert (restored - fresh).abs().sum(-1).mean() < 0.35 * (answers - fresh).abs().sum(-1).mean()
    assert (restored.argmax(-1) == fresh.argmax(-1)).float().mean() > 0.9


def test_the_undefended_oracle_is_inverted_exactly_without_shadows(monkeypatch) -> None:
    def no_shadows(*args, **kwargs):
        raise AssertionError("no shadow model is needed to invert the identity")

    monkeypatch.setattr(defense_aware, "train_shadows", no_shadows)
    cfg = DefenseAwareConfig(recipe=SGDRecipe(epochs=1, batch_size=8, lr=0.1))
    out = restorers(
        {"method": "None"}, [0.0], dataset="digits", images=None, plain=None, cfg=cfg, arch="lenet5",
        classes=10, in_channels=1, device=torch.device("cpu"), seed=0,
    )  # fmt: skip
    assert out == [(None, {"l1_defended": 0.0, "l1_restored": 0.0})]
    answers = confident_posteriors(4)
    assert restore(None, answers) is answers


def test_the_attacker_builds_its_own_models_and_never_the_victims(monkeypatch) -> None:
    """Shadows, auxiliary models and the defended pairs come from the attacker's images alone: the
    victim and the oracle are never touched (their queries would count against the budget)."""
    import msdefense.oracle
    import msdefense.victims

    def forbidden(*args, **kwargs):
        raise AssertionError("the defense-aware attacker touched the victim or the oracle")

    monkeypatch.setattr(msdefense.oracle.Oracle, "__init__", forbidden)
    monkeypatch.setattr(msdefense.victims, "read_victim", forbidden)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 32, 32, generator=g), torch.randint(3, (64,), generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    cfg = DefenseAwareConfig(shadows=2, recipe=SGDRecipe(epochs=1, batch_size=16, lr=0.05), restorer_steps=20)
    common = {"dataset": "digits", "images": data, "plain": data, "cfg": cfg, "arch": "lenet5fifth"}
    for entry in ({"method": "AdaptiveMisinformation"}, {"method": "GRAD", "surrogate_epochs": 1}):
        out = restorers(
            entry, [0.5, 0.9], classes=3, in_channels=1, device=torch.device("cpu"), seed=1, **common
        )
        assert len(out) == 2 and all(r is not None and 0 <= fit["l1_restored"] <= 2 for r, fit in out)


@pytest.fixture(scope="module")
def aware_run(tmp_path_factory) -> Path:
    """A small run: LeNet-5/5 on digits, held-out queries, soft clones and restored ones at each
    defense's strongest value (knockoff.strongest_only)."""
    tiny = yaml.safe_load((Path(__file__).parent / "data" / "tiny.yaml").read_text())
    workdir = tmp_path_factory.mktemp("aware")
    config = {
        **{k: tiny[k] for k in ("seeds", "device", "resources", "data", "defender_models")},
        "experiment": "aware",
        "victims": {"digits_tiny": {**tiny["victims"]["digits_tiny"], "transfer_sets": ["heldout"]}},
        "transfer_sets": {"heldout": {"source": "heldout"}},
        "defenses": {
            "undefended": {"method": "None", "params": [0.0]},
            "DCP": {"method": "DCP", "params": [0.5, 1.5]},
            "TopK": {"method": "TopK", "params": [1]},
        },
        "latency": {"victims": []},
        "knockoff": {
            **tiny["knockoff"],
            "labels": ["soft", "restored"],
            "strongest_only": ["restored"],
            "defense_aware": {"shadow": {"epochs": 2, "batch_size": 64, "lr": 0.05}, "restorer_steps": 50},
        },
    }
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = run_tiny(workdir, "--cores", "2", "results/aware/tables/knockoff.csv")
    assert proc.returncode == 0, proc.stderr[-4000:]
    yield workdir / "results" / "aware"
    shutil.rmtree(workdir, ignore_errors=True)


def _records(run: Path) -> list[dict]:
    return [
        r
        for f in sorted(run.glob("seed*/attacks/knockoff/*/*/*/metrics.json"))
        for r in json.loads(f.read_text())
    ]


def test_restored_clones_spend_exactly_the_naive_attackers_queries(aware_run: Path) -> None:
    records = _records(aware_run)
    assert {r["labels"] for r in records} == {"soft", "restored"}
    for r in records:
        (soft,) = [
            s for s in records
            if (s["labels"], s["defense"], s["param"], s["seed"]) == ("soft", r["defense"], r["param"], r["seed"])
        ]  # fmt: skip
        assert r["queries"] == soft["queries"]  # the same stored answers: not one query more
        assert r["stream_seed"] == soft["stream_seed"]
        if r["labels"] == "restored" and r["method"] != "None":
            assert 0 <= r["restorer_l1_restored"] <= 2 and r["restorer_l1_defended"] > 0
    heldout = {r["queries"] for r in records}
    assert len(heldout) == 1  # every clone: one answer per held-out image


def test_strongest_only_meets_the_strongest_value_alone_with_the_defense_aware_attacker(
    aware_run: Path,
) -> None:
    """DCP is swept at 0.5 and 1.5: its restored clones exist at 1.5 alone, every seed; the worst
    case over attackers has rows at 1.5 only (at 0.5 the soft attacker alone ran)."""
    import pandas as pd

    records = _records(aware_run)
    restored = [r for r in records if r["labels"] == "restored" and r["method"] == "DCP"]
    assert restored and {r["param"] for r in restored} == {"1.5"}
    assert {r["param"] for r in records if r["labels"] == "soft" and r["method"] == "DCP"} == {"0.5", "1.5"}
    assert all(1 <= r["restorer_steps"] <= 50 for r in restored)
    table = pd.read_csv(aware_run / "tables" / "knockoff.csv")
    worst = table[(table["labels"] == "worst") & (table["defense"] == "DCP")]
    assert sorted(worst["param"].astype(float)) == [1.5]


def test_against_the_undefended_oracle_the_restored_clone_is_the_soft_one(aware_run: Path) -> None:
    records = _records(aware_run)
    undefended = {(r["labels"], r["seed"]): r for r in records if r["method"] == "None"}
    for seed in {s for _, s in undefended}:
        soft, restored = undefended["soft", seed], undefended["restored", seed]
        assert (restored["clone_acc"], restored["fidelity"]) == (soft["clone_acc"], soft["fidelity"])
        assert restored["restorer_l1_defended"] == restored["restorer_l1_restored"] == 0.0


def test_reverse_sigmoid_and_dcp_answer_two_posteriors_alike() -> None:
    """The counterexample of docs/methods.md: the answer hides which minor class is likelier."""
    a, c = 0.002, 0.37899897653374  # f(a) = f(c) at β 1.5, γ 0.2 (solved by bisection)
    y = torch.tensor([[1 - a - c, a, c], [1 - a - c, c, a]], dtype=torch.float64)
    for method in ("ReverseSigmoid", "DCP"):
        out = build_defense({"method": method}, "digits").perturb(None, y, [1.5])[0]
        torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-9)
        torch.testing.assert_close(
            out[0], torch.tensor([0.4266, 0.2867, 0.2867], dtype=torch.float64), atol=1e-4, rtol=0
        )


def test_a_sweep_job_sees_only_its_own_label_kinds() -> None:
    """The train_knockoff parameters (knockoff_for): adding the defense-aware attacker for one
    defense, or retuning it, leaves the other defenses' jobs' parameters as they were."""
    from msdefense.attacks.knockoff import knockoff_for, label_kinds

    base = {"arch": "lenet5", "epochs": 5, "batch_size": 64, "lr": 0.05, "labels": ["soft", "argmax"]}
    aware = {
        **base,
        "labels": ["soft", "argmax", "restored"],
        "restored_defenses": ["undefended", "DCP"],
        "defense_aware": {"shadows": 3},
    }
    assert knockoff_for(aware, "MAD", True) == knockoff_for(base, "MAD", True)
    assert knockoff_for(base, "MAD", True)["labels"] == ["soft", "argmax"]
    dcp = knockoff_for(aware, "DCP", True)
    assert dcp["labels"] == ["soft", "argmax", "restored"] and dcp["defense_aware"] == {"shadows": 3}
    assert "restored_defenses" not in dcp and label_kinds(dcp, "DCP", True) == label_kinds(aware, "DCP", True)
    # the budget clones read only the recipe and the budgets: no attacker's options rerun them
    from msdefense.attacks.knockoff import budget_view

    assert budget_view({**aware, "budgets": [0.1]}) == {**budget_view(base), "budgets": [0.1]}
    # photo crops carry no labels for the attacker's shadows: no restored clone, no defense_aware
    assert knockoff_for(aware, "DCP", False) == knockoff_for(base, "DCP", False)


def _one_value_alone(
    defended, clean, *, seed, steps, width, lr, batch_size=256, check_every=50, patience=None
):
    """The restorer of one value fitted by itself, written out plainly (nn.Linear layers, one Adam
    per value): what the stacked fit of a whole sweep must reproduce for each of its values."""
    from msdefense.attacks.restorer import Restorer

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(clean), generator=g)
    held = max(1, len(order) // 10)
    val, train = order[:held], order[held:]
    torch.manual_seed(seed)
    model = Restorer(clean.shape[1], width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, since = float("inf"), None, 0

    def loss_of(idx):
        return -(clean[idx] * torch.log_softmax(model(defended[idx]), -1)).sum(-1).mean()

    for step in range(1, steps + 1):
        idx = train[torch.randint(len(train), (min(batch_size, len(train)),), generator=g)]
        opt.zero_grad(set_to_none=True)
        loss_of(idx).backward()
        opt.step()
        if step % check_every == 0 or step == steps:
            with torch.no_grad():
                loss = float(loss_of(val))
            if loss < best:
                best, best_state, since = loss, {k: v.clone() for k, v in model.state_dict().items()}, 0
            else:
                since += 1
            if patience is not None and since >= patience:
                break
    model.load_state_dict(best_state)
    return model.eval(), step


def test_the_stacked_fit_of_a_sweep_equals_fitting_each_value_alone() -> None:
    """fit_restorers fits every value of a sweep in one stacked model: each value's restorer is
    exactly the one its own seed gives fitted alone, with a fixed step count and with the plateau
    rule (each value stops on its own); and one value's fit is the plainly written algorithm
    (nn.Linear layers, one Adam) to float rounding."""
    from msdefense.attacks.restorer import fit_restorer, fit_restorers

    clean = confident_posteriors(600)
    defended = build_defense({"method": "DCP"}, "digits").perturb(None, clean, [0.4, 0.8, 1.5])
    probe = build_defense({"method": "DCP"}, "digits").perturb(
        None, confident_posteriors(200, seed=5), [0.8]
    )[0]
    seeds = [11, 12, 13]
    for lr, steps, patience in ((3e-3, 60, None), (1e-2, 400, 2)):
        options = {"steps": steps, "width": 32, "lr": lr, "check_every": 20, "patience": patience}
        fitted = fit_restorers(defended, clean, seeds=seeds, **options)
        outs = [r.restore(probe) for r, _ in fitted]
        for e, seed in enumerate(seeds):
            one, fit = fit_restorer(defended[e], clean, seed=seed, **options)
            assert torch.equal(outs[e], one.restore(probe)) and fitted[e][1] == fit
            plain, plain_steps = _one_value_alone(defended[e], clean, seed=seed, **options)
            torch.testing.assert_close(outs[e], plain.restore(probe), atol=1e-5, rtol=1e-4)
            assert fit["steps"] == plain_steps
        assert not torch.allclose(outs[0], outs[2], atol=1e-3)  # the values are not one restorer
        if patience is not None:  # at the higher learning rate every value overfits, stops early
            assert all(fit["steps"] < steps for _, fit in fitted), [fit["steps"] for _, fit in fitted]
