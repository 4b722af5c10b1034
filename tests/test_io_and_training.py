"""Artifacts without pickle, atomic writes, and the training losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from msdefense.io import atomic_path, load_arrays, save_arrays
from msdefense.models import build_model
from msdefense.training import (
    SGDRecipe,
    accuracy,
    attacker_labels,
    distill,
    predict_probs,
    prepare_model,
    soft_cross_entropy,
)
from msdefense.victims import read_victim, read_victim_info, save_classifier


def test_atomic_write_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_npz_roundtrip_without_pickle(tmp_path) -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "names": np.array(["0.1", "1.5"])}
    save_arrays(tmp_path / "x.npz", arrays)
    back = load_arrays(tmp_path / "x.npz")
    np.testing.assert_array_equal(back["a"], arrays["a"])
    assert back["names"].tolist() == ["0.1", "1.5"]
    with pytest.raises(TypeError, match="object"):
        save_arrays(tmp_path / "y.npz", {"bad": np.array([{"a": 1}], dtype=object)})


def test_classifier_roundtrip_is_bit_identical(tmp_path) -> None:
    model = build_model("lenet5half", 10, 1).eval()
    save_classifier(model, tmp_path / "m.safetensors", arch="lenet5half", dataset="digits")
    loaded, info = read_victim(tmp_path / "m.safetensors")
    assert (info.kind, info.arch, info.dataset, info.num_classes) == ("fp32", "lenet5half", "digits", 10)
    assert read_victim_info(tmp_path / "m.safetensors") == info
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    x = torch.randn(4, 1, 32, 32)
    assert torch.equal(prepare_model(model, "cpu")(x), loaded(x))  # same weights, same layout


def test_identical_weights_give_identical_bytes(tmp_path) -> None:
    """safetensors keeps metadata in a hash map (its order changes per process); the store sorts it."""
    import subprocess
    import sys

    code = (
        "import torch, sys; from msdefense.models import build_model; from msdefense.victims import save_classifier;"
        "torch.manual_seed(0); save_classifier(build_model('lenet5fifth', 10, 1), sys.argv[1], arch='lenet5fifth', "
        "dataset='digits')"
    )
    paths = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for path in paths:  # separate processes: a fresh hash seed each
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert len({p.read_bytes() for p in paths}) == 1


def test_soft_cross_entropy_equals_cross_entropy_on_one_hot() -> None:
    logits, labels = torch.randn(8, 5), torch.randint(0, 5, (8,))
    torch.testing.assert_close(
        soft_cross_entropy(logits, F.one_hot(labels, 5).float()), F.cross_entropy(logits, labels)
    )


def test_accuracy_is_exact_fraction() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert accuracy(probs, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def test_distillation_learns_the_teacher() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 1, 32, 32)
    teacher = build_model("lenet5fifth", 3, 1).eval()
    with torch.no_grad():
        targets = torch.softmax(3 * teacher(x), -1)
    data = TensorDataset(x, torch.zeros(256, dtype=torch.long))
    student = build_model("lenet5fifth", 3, 1)
    agree_before = accuracy(predict_probs(student, data, torch.device("cpu")), targets.argmax(-1))
    hist = distill(
        student,
        data,
        targets,
        SGDRecipe(epochs=15, batch_size=32, lr=0.05),
        device=torch.device("cpu"),
        seed=0,
    )
    agree_after = accuracy(predict_probs(student, data, torch.device("cpu")), targets.argmax(-1))
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert agree_after > max(0.8, agree_before)


def test_stop_after_ends_training_early_on_the_full_schedule() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 1, 32, 32)
    data = TensorDataset(x, torch.zeros(64, dtype=torch.long))
    targets = torch.softmax(torch.randn(64, 3), -1)
    recipe = SGDRecipe(epochs=10, batch_size=32, lr=0.05)
    untouched = build_model("lenet5fifth", 3, 1)
    before = {k: v.clone() for k, v in untouched.state_dict().items()}
    assert distill(untouched, data, targets, recipe, device=torch.device("cpu"), seed=0, stop_after=0) == []
    assert all(torch.equal(before[k], v) for k, v in untouched.state_dict().items())  # 0 epochs = untrained
    hist = distill(
        build_model("lenet5fifth", 3, 1),
        data,
        targets,
        recipe,
        device=torch.device("cpu"),
        seed=0,
        stop_after=3,
    )
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["lr"] > 0.5 * recipe.lr  # still early in the 10-epoch cosine schedule


def test_attacker_labels() -> None:
    answers = torch.tensor([[0.2, 0.5, 0.3], [0.34, 0.33, 0.33]])
    assert torch.equal(attacker_labels(answers, "soft"), answers)
    assert torch.equal(attacker_labels(answers, "argmax"), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="knockoff.labels"):
        attacker_labels(answers, "hard")


def test_plateau_warms_up_decays_on_a_plateau_and_stops_after_the_last_decay() -> None:
    from msdefense.schedules import Plateau

    recipe = SGDRecipe(epochs=50, batch_size=8, lr=0.1, patience=2, lr_decays=2, warmup_epochs=1)
    rule = Plateau(recipe, steps_per_epoch=4)
    rates = [rule.next_lr() for _ in range(5)]
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])  # linear warm-up over one epoch
    for acc in (0.5, 0.6, 0.6, 0.6):  # two epochs without a better accuracy: first decay
        rule.end_epoch(acc)
    assert rule.lr() == pytest.approx(0.01) and not rule.stopped
    for acc in (0.7, 0.7, 0.7):  # a better one resets the wait; two more: second decay
        rule.end_epoch(acc)
    assert rule.lr() == pytest.approx(0.001) and not rule.stopped
    rule.end_epoch(0.7)
    rule.end_epoch(0.69)
    assert rule.stop_reason == "plateau" and rule.epochs == 9
    capped = Plateau(SGDRecipe(epochs=3, batch_size=8, lr=0.1, patience=5), steps_per_epoch=1)
    for acc in (0.1, 0.2, 0.3):  # still improving when the cap comes
        capped.end_epoch(acc)
    assert capped.stop_reason == "cap"


def test_a_recipe_with_patience_trains_until_its_plateau_and_says_so() -> None:
    torch.manual_seed(0)
    images = torch.rand(64, 1, 32, 32) * 2 - 1
    data = TensorDataset(images, torch.zeros(64, dtype=torch.long))
    targets = torch.softmax(torch.randn(64, 10), -1)
    model = build_model("lenet5", 10, 1)
    recipe = SGDRecipe(epochs=40, batch_size=16, lr=0.05, patience=1, lr_decays=0)
    # a validation accuracy that never improves after the first epoch: the first plateau stops training
    hist = distill(
        model, data, targets, recipe, device=torch.device("cpu"), seed=0, evaluate=lambda m: {"val_acc": 0.5}
    )
    assert len(hist) == 2 and hist[-1]["stop_reason"] == "plateau"
    with pytest.raises(ValueError, match="val_acc"):
        distill(model, data, targets, recipe, device=torch.device("cpu"), seed=0)
    with pytest.raises(ValueError, match="patience"):
        SGDRecipe(epochs=4, batch_size=8, lr=0.1, patience=0)
    with pytest.raises(ValueError, match="needs patience"):
        SGDRecipe(epochs=4, batch_size=8, lr=0.1, warmup_epochs=1)
