"""The ART adapters (msdefense.integrations.art, the optional extra ``msdefense[art]``): the
postprocessor answers what the package defense answers, ART's KnockoffNets steals through the
oracle adapter with every query counted, and the same attack on the defense attached as an ART
postprocessor receives the same answers and trains the same clone. docs/api.md's ART example runs."""

from __future__ import annotations

import copy
import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import msdefense

art = pytest.importorskip("art", reason="the optional extra: pip install msdefense[art]")
from art.attacks.extraction import KnockoffNets  # noqa: E402
from art.estimators.classification import PyTorchClassifier  # noqa: E402

from msdefense.defenses import build_defense  # noqa: E402
from msdefense.integrations.art import DefensePostprocessor, art_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (1, 32, 32)
#: the ART example's fence: ``python`` for GitHub's highlighting, a second word so that
#: tests/test_api.py (whose examples need no extra) leaves it to this file
ART_BLOCK = re.compile(r"```python art\n(.*?)```", flags=re.S)


def lenet(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return msdefense.build_model("lenet5", num_classes=10, in_channels=1)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return msdefense.dataset_tensors("digits", "train")


@pytest.fixture(scope="module")
def victim(digits) -> torch.nn.Module:
    """A LeNet trained for 40 steps on the digits (about a second): answers worth stealing."""
    x, y = digits
    model = lenet(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        batch = torch.randint(len(x), (64,), generator=generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return model.eval()


def random_posteriors(n: int = 64, k: int = 10) -> np.ndarray:
    logits = np.random.default_rng(0).normal(scale=3.0, size=(n, k))
    return torch.softmax(torch.from_numpy(logits).float(), -1).numpy()


@pytest.mark.parametrize(
    ("method", "param", "options"),
    [("DCP", 1.5, {"gamma": 0.2}), ("ReverseSigmoid", 1.0, {}), ("TopK", 2, {}), ("Random", 0.5, {})],
)
def test_the_postprocessor_answers_what_the_defense_answers(method, param, options) -> None:
    probs = random_posteriors()
    direct = build_defense({"method": method, **options}, seed=3)(None, torch.from_numpy(probs), param)
    by_name = DefensePostprocessor(method, param, seed=3, **options)(probs)
    built = DefensePostprocessor(build_defense({"method": method, **options}, seed=3), param)(probs)
    assert by_name.dtype == np.float32 and by_name.shape == probs.shape
    np.testing.assert_array_equal(by_name, direct.numpy())
    np.testing.assert_array_equal(built, direct.numpy())


def test_on_logits_it_answers_what_the_oracle_answers(victim, digits) -> None:
    x = digits[0][:32]
    oracle = msdefense.defend(victim, "DCP", 1.5)
    with torch.no_grad():
        logits = victim(x).numpy()
    np.testing.assert_array_equal(DefensePostprocessor("DCP", 1.5, logits=True)(logits), oracle(x.numpy()))


def test_the_postprocessor_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="gama"):
        DefensePostprocessor("DCP", 1.5, gama=0.2)
    with pytest.raises(ValueError, match="not a finite number"):
        DefensePostprocessor("DCP", float("nan"))
    with pytest.raises(ValueError, match="finite number >= 0"):
        DefensePostprocessor(build_defense({"method": "DCP"}), -1.0)
    mad = build_defense({"method": "MAD"}, aux={"surrogate_e0": lenet(1)})
    with pytest.raises(ValueError, match="reads the query images"):
        DefensePostprocessor(mad, 0.5)
    with pytest.raises(TypeError, match="already built"):
        DefensePostprocessor(build_defense({"method": "DCP"}), 1.5, gamma=0.2)


def test_a_package_oracle_counts_the_queries_an_art_classifier_sends(victim) -> None:
    oracle = msdefense.Oracle(victim, build_defense({"method": "DCP"}), [1.5], budget=10)
    classifier = art_classifier(oracle, input_shape=SHAPE, clip_values=(-1.0, 3.0))
    assert classifier.nb_classes == 10 and classifier.input_shape == SHAPE
    answers = classifier.predict(np.zeros((7, *SHAPE), np.float32), batch_size=3)
    assert answers.shape == (7, 10) and np.allclose(answers.sum(1), 1, atol=1e-5)
    assert oracle.queries_used == 7
    with pytest.raises(msdefense.QueryBudgetExceeded):
        classifier.predict(np.zeros((4, *SHAPE), np.float32))
    sweep = msdefense.Oracle(victim, build_defense({"method": "DCP"}), [0.5, 1.5])
    with pytest.raises(ValueError, match="one operating point"):
        art_classifier(sweep, input_shape=SHAPE)


def steal(
    victim_classifier, x: np.ndarray, thief: torch.nn.Module, batch_size_query: int
) -> tuple[PyTorchClassifier, list]:
    """KnockoffNets (random sampling, 200 queries, 2 epochs) with every source of randomness seeded;
    returns the clone and the answers ART received."""
    received: list[np.ndarray] = []
    predict = victim_classifier.predict

    def recording(*args, **kwargs):
        # ART's PyTorchClassifier.predict draws from torch's global RNG (its DataLoader's base seed,
        # even unshuffled) and the oracle does not: the victim's answers leave the RNG as they
        # found it, so that both clones' batches are shuffled alike
        state = torch.get_rng_state()
        received.append(predict(*args, **kwargs))
        torch.set_rng_state(state)
        return received[-1]

    victim_classifier.predict = recording
    clone = PyTorchClassifier(
        thief,
        torch.nn.CrossEntropyLoss(),  # takes the defended probabilities as soft labels
        input_shape=SHAPE,
        nb_classes=10,
        optimizer=torch.optim.Adam(thief.parameters(), lr=1e-3),
        device_type="cpu",
    )
    attack = KnockoffNets(
        victim_classifier,
        batch_size_fit=32,
        batch_size_query=batch_size_query,
        nb_epochs=2,
        nb_stolen=200,
        sampling_strategy="random",
        use_probability=True,
        verbose=False,
    )
    np.random.seed(0)  # ART draws the queries with the global numpy RNG
    torch.manual_seed(0)  # and shuffles the clone's batches with torch's
    return attack.extract(x, thieved_classifier=clone), received


@pytest.mark.parametrize("batch_size_query", [200, 50])
def test_knockoff_nets_steals_the_same_clone_through_either_adapter(victim, digits, batch_size_query) -> None:
    """The same attack, seeded alike, on the package's oracle (art_classifier) and on an ART
    PyTorchClassifier with the defense attached as its postprocessor.

    Asked in one batch, ART receives the same answers bit for bit and trains the same clone. Asked
    in several, the answers agree to float32 rounding only: ART's PyTorchClassifier postprocesses
    all its batches' predictions at once, while the oracle answers each batch as it comes, and
    PyTorch's vectorised CPU kernels (exp, log: DCP's sigmoid and odds) compute a tensor's last
    few elements past a multiple of the SIMD width on a scalar path that can differ by one ulp,
    so the rows at a batch boundary may differ in their last bit (the package's oracle itself
    answers a row one ulp apart in a batch of 50 and in one of 200).
    """
    x = digits[0][:600].numpy()
    init = lenet(7)
    oracle = msdefense.defend(victim, "DCP", 1.5)
    classifier = art_classifier(oracle, input_shape=SHAPE)
    through_oracle, answers = steal(classifier, x, copy.deepcopy(init), batch_size_query)
    assert oracle.queries_used == 200  # every query ART made, counted by the package's oracle
    assert through_oracle.predict(x[:5]).shape == (5, 10)

    postprocessed = PyTorchClassifier(
        copy.deepcopy(victim),
        torch.nn.CrossEntropyLoss(),
        input_shape=SHAPE,
        nb_classes=10,
        postprocessing_defences=DefensePostprocessor("DCP", 1.5, logits=True),
        device_type="cpu",
    )
    through_art, art_answers = steal(postprocessed, x, copy.deepcopy(init), batch_size_query)

    answers, art_answers = np.concatenate(answers), np.concatenate(art_answers)
    assert answers.shape == (200, 10) and np.allclose(answers.sum(1), 1, atol=1e-5)
    if batch_size_query < 200:
        np.testing.assert_allclose(answers, art_answers, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(answers.argmax(1), art_answers.argmax(1))
        return
    np.testing.assert_array_equal(answers, art_answers)
    trained = through_oracle.model.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in init.state_dict().items())
    for (name, a), (_, b) in zip(
        through_oracle.model.state_dict().items(), through_art.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(through_oracle.predict(x), through_art.predict(x))


def test_the_docs_art_examples_run_and_readme_quotes_them_verbatim() -> None:
    blocks = ART_BLOCK.findall((ROOT / "docs" / "api.md").read_text())
    assert len(blocks) >= 2  # KnockoffNets through the oracle; the defense as a postprocessor
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102  (our own docs)
    for quoted in ART_BLOCK.findall((ROOT / "README.md").read_text()):
        assert quoted in blocks, "README.md's ART example differs from docs/api.md's"


def test_without_art_the_module_says_how_to_install_it(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "art" or m.startswith("art.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "msdefense.integrations.art")
    with pytest.raises(ImportError, match=re.escape("pip install msdefense[art]")):
        importlib.import_module("msdefense.integrations.art")


def test_importing_msdefense_does_not_import_art() -> None:
    code = (
        "import sys, msdefense, msdefense.integrations; msdefense.defend; msdefense.Oracle\n"
        "assert 'art' not in sys.modules, 'import msdefense imported art'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
