"""LeNet's inference-time pooling (msdefense.models.pooling) against nn.MaxPool2d."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from msdefense.models import build_model
from msdefense.models.pooling import fast_path, max_pool_2x2


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_equal_the_module_exactly_with_ties_and_nans(channels_last: bool, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(7, 5, 12, 10, generator=gen, dtype=dtype)).mul(4).round()  # many ties, zeros
    x[0, 0, 0, 0] = float("nan")
    x[1, 2, 3, 3] = float("-inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    pool = nn.MaxPool2d(2, 2)
    with torch.no_grad():
        assert fast_path(pool, x)
        torch.testing.assert_close(max_pool_2x2(pool, x), pool(x), rtol=0, atol=0, equal_nan=True)


def test_the_module_runs_where_a_derivative_is_taken_or_the_setting_differs() -> None:
    pool, x = nn.MaxPool2d(2, 2), torch.randn(2, 3, 8, 8)
    assert not fast_path(pool, x.requires_grad_())  # autograd: the first-maximum gradient
    with torch.no_grad():
        assert fast_path(pool, x)
    plain = torch.randn(2, 3, 8, 8)
    assert not fast_path(nn.MaxPool2d(3, 2), plain)
    assert not fast_path(nn.MaxPool2d(2, 2, ceil_mode=True), plain)
    assert not fast_path(pool, torch.randn(2, 3, 7, 8))
    assert not fast_path(pool, torch.quantize_per_tensor(plain, 0.1, 0, torch.quint8))
    seen = []

    def probe(t: torch.Tensor) -> torch.Tensor:
        seen.append(fast_path(pool, t))
        return t.sum()

    torch.func.jvp(probe, (plain,), (torch.ones_like(plain),))
    torch.func.vmap(probe)(plain)
    assert seen == [False, False]


def test_lenet_answers_and_gradients_are_those_of_its_pool_modules() -> None:
    # float64: the traced graph also runs conv3 as its module, which sums in another order than
    # LeNet's matrix product (msdefense.models.point_conv); the pools themselves are exact (above)
    torch.manual_seed(0)
    model = build_model("lenet5", 10, 1).double().to(memory_format=torch.channels_last).eval()
    traced = fx.symbolic_trace(model)  # tracing records the pool modules (quantization, GRAD rules)
    assert {"maxpool1", "maxpool2"} <= {n.target for n in traced.graph.nodes if n.op == "call_module"}
    x = torch.randn(16, 1, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), traced(x), rtol=0, atol=1e-12)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (ga,) = torch.autograd.grad(model(xa).sum(), xa)
    (gb,) = torch.autograd.grad(traced(xb).sum(), xb)
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-12)
