"""The library API (msdefense.defend, msdefense.dataset_tensors and the names msdefense exports):
docs/api.md's examples run as written, and the API refuses bad input by name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import msdefense

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_docs_examples_run_in_order() -> None:
    blocks = python_blocks(ROOT / "docs" / "api.md")
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102  (our own docs)


def test_the_readme_example_runs() -> None:
    (block,) = python_blocks(ROOT / "README.md")
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102  (our own README)


def test_every_exported_name_resolves() -> None:
    for name in msdefense.__all__:
        assert getattr(msdefense, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'defence'"):
        msdefense.defence  # noqa: B018


def test_numpy_and_torch_queries_give_the_same_answers() -> None:
    torch.manual_seed(0)
    model = msdefense.build_model("lenet5", num_classes=10, in_channels=1)
    oracle = msdefense.defend(model, "DCP", 1.5)
    x = torch.randn(5, 1, 32, 32)
    from_torch, from_numpy = oracle(x), oracle(x.numpy().astype(np.float64))
    assert isinstance(from_numpy, np.ndarray) and isinstance(from_torch, torch.Tensor)
    np.testing.assert_allclose(from_numpy, from_torch.numpy(), rtol=0, atol=0)
    undefended = msdefense.defend(model)(x)  # "None": the victim's own probabilities
    np.testing.assert_allclose(undefended, torch.softmax(model(x), -1).detach(), atol=1e-6)


def test_the_api_refuses_bad_input_by_name() -> None:
    model = msdefense.build_model("lenet5", num_classes=10, in_channels=1)
    with pytest.raises(ValueError, match="unknown defense method 'DCQ'"):
        msdefense.defend(model, "DCQ", 1.0)
    with pytest.raises(ValueError, match="needs param"):
        msdefense.defend(model, "DCP")
    with pytest.raises(ValueError, match="whole numbers"):
        msdefense.defend(model, "TopK", 1.5)
    with pytest.raises(ValueError, match="surrogate"):
        msdefense.defend(model, "MAD", 0.5)
    oracle = msdefense.defend(model, "DCP", 1.5, budget=4)
    with pytest.raises(ValueError, match=r"add the batch axis"):
        oracle(torch.randn(1, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        oracle(np.zeros((2, 1, 32, 32), dtype=np.uint8))
    oracle(torch.randn(4, 1, 32, 32))
    with pytest.raises(msdefense.QueryBudgetExceeded):
        oracle(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="splits"):
        msdefense.dataset_tensors("digits", "validation")
