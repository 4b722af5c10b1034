"""The CPU fast paths of LeNet-5 and the data-free generators against the layers they replace:
conv3 as a matrix product (msdefense.models.point_conv), nearest ×2 upsampling + 3×3
convolution in the sub-pixel form (msdefense.models.upsample_conv) and a one-output-channel
convolution as a depthwise one and a channel sum (msdefense.models.one_channel_conv). Float64,
so the only difference left is the order of the sums."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from msdefense.models import build_generator, build_model
from msdefense.models.one_channel_conv import fast_path as one_channel_fast_path
from msdefense.models.one_channel_conv import one_channel_conv
from msdefense.models.point_conv import fast_path as point_fast_path
from msdefense.models.point_conv import point_conv
from msdefense.models.upsample_conv import fast_path as upsample_fast_path
from msdefense.models.upsample_conv import phase_weights, upsample_conv
from msdefense.training import prepare_model

F64 = torch.float64


def assert_equals_the_module_with_gradients(fast, conv: nn.Conv2d, x: torch.Tensor) -> None:  # noqa: ANN001
    """``fast(conv, x)`` equals ``conv(x)`` (float64), with the gradients to x and the parameters."""
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fast(conv, xa), conv(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb, rtol=0, atol=1e-12)
    g = torch.randn_like(yb)
    grads_a = torch.autograd.grad(ya, [xa, *conv.parameters()], g)
    grads_b = torch.autograd.grad(yb, [xb, *conv.parameters()], g)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_point_conv_equals_the_convolution_with_gradients(bias: bool, channels_last: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 120, 5, bias=bias).double()
    x = torch.randn(9, 16, 5, 5, dtype=F64)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    assert point_fast_path(conv, x.requires_grad_())
    assert point_conv(conv, x).shape == (9, 120, 1, 1)
    assert_equals_the_module_with_gradients(point_conv, conv, x.detach())


def test_point_conv_leaves_other_geometries_tracing_and_quantized_input_to_the_module() -> None:
    conv = nn.Conv2d(4, 8, 5)
    assert not point_fast_path(conv, torch.randn(2, 4, 6, 6))  # a larger plane: a real convolution
    assert not point_fast_path(nn.Conv2d(4, 8, 5, padding=1), torch.randn(2, 4, 5, 5))
    assert not point_fast_path(nn.Conv2d(4, 8, 5, groups=2), torch.randn(2, 4, 5, 5))
    assert not point_fast_path(conv, torch.quantize_per_tensor(torch.randn(2, 4, 5, 5), 0.1, 0, torch.quint8))
    seen = []

    def probe(t: torch.Tensor) -> torch.Tensor:
        seen.append(point_fast_path(conv, t))
        return t.sum()

    torch.func.vmap(probe)(torch.randn(3, 2, 4, 5, 5))
    assert seen == [False]
    traced = fx.symbolic_trace(build_model("lenet5", 10, 1))  # quantization and GRAD's rules see conv3
    assert "conv3" in {n.target for n in traced.graph.nodes if n.op == "call_module"}


@pytest.mark.parametrize("arch", ["lenet5", "lenet5half", "lenet5fifth"])
def test_lenet_answers_and_gradients_equal_its_module_graph(
    arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(1)
    model = prepare_model(build_model(arch, 10, 1), "cpu").double().train()
    traced = fx.symbolic_trace(model)  # every layer a module call
    fast = []

    def spy(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        fast.append(point_fast_path(conv, x))
        return point_conv(conv, x)

    monkeypatch.setattr("msdefense.models.lenet.point_conv", spy)
    x = torch.randn(12, 1, 32, 32, dtype=F64)
    torch.testing.assert_close(model(x), traced(x), rtol=0, atol=1e-12)
    assert fast == [True]  # LeNet took the matrix product
    grads_a = torch.autograd.grad(model(x).logsumexp(-1).sum(), list(model.parameters()))
    grads_b = torch.autograd.grad(traced(x).logsumexp(-1).sum(), list(traced.parameters()))
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_phase_weights_sum_the_taps_that_fall_on_each_block() -> None:
    w = torch.arange(9, dtype=F64).view(1, 1, 3, 3)  # [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    k = phase_weights(w).view(2, 2, 2, 2)  # [row parity, column parity, block row, block column]
    # even output row: taps [k0 | k1 + k2]; odd: [k0 + k1 | k2] (rows and columns alike)
    assert k[0, 0].tolist() == [[0.0, 1.0 + 2.0], [3.0 + 6.0, 4.0 + 5.0 + 7.0 + 8.0]]
    assert k[1, 1].tolist() == [[0.0 + 1.0 + 3.0 + 4.0, 2.0 + 5.0], [6.0 + 7.0, 8.0]]
    assert k[0, 1].tolist() == [[0.0 + 1.0, 2.0], [3.0 + 4.0 + 6.0 + 7.0, 5.0 + 8.0]]


@pytest.mark.parametrize(("h", "w"), [(8, 8), (5, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_upsample_conv_equals_upsampling_then_the_convolution(h: int, w: int, bias: bool) -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=bias).double().to(memory_format=torch.channels_last)
    x = torch.randn(4, 6, h, w, dtype=F64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert upsample_fast_path(conv, x)
        fast, plain = upsample_conv(conv, x), conv(F.interpolate(x, scale_factor=2))
    assert fast.shape == plain.shape == (4, 5, 2 * h, 2 * w)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-12)


def test_upsample_conv_runs_the_layers_where_a_gradient_is_taken_or_the_setting_differs() -> None:
    conv, x = nn.Conv2d(3, 4, 3, padding=1), torch.randn(2, 3, 4, 4)
    assert not upsample_fast_path(conv, x)  # autograd records: the plain layers' backward is cheaper
    with torch.no_grad():
        assert upsample_fast_path(conv, x)
        assert not upsample_fast_path(nn.Conv2d(3, 4, 3), x)  # no padding
        assert not upsample_fast_path(nn.Conv2d(3, 4, 5, padding=2), x)
        assert not upsample_fast_path(nn.Conv2d(3, 4, 3, padding=1, stride=2), x)
    xg = x.clone().requires_grad_()
    out = upsample_conv(conv, xg)
    (g,) = torch.autograd.grad(out.sum(), xg)
    (g_plain,) = torch.autograd.grad(conv(F.interpolate(xg, scale_factor=2)).sum(), xg)
    assert torch.equal(g, g_plain)


@pytest.mark.parametrize(
    ("kernel", "padding", "stride", "bias"),
    [(3, 1, 1, True), (3, 1, 2, False), (5, 0, 1, True), (1, 0, 1, True)],
)
def test_one_channel_conv_equals_the_convolution_with_gradients(
    kernel: int, padding: int, stride: int, bias: bool
) -> None:
    torch.manual_seed(4)
    conv = nn.Conv2d(8, 1, kernel, stride=stride, padding=padding, bias=bias).double()
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(5, 8, 9, 11, dtype=F64).contiguous(memory_format=torch.channels_last)
    assert one_channel_fast_path(conv, x.requires_grad_())
    assert_equals_the_module_with_gradients(one_channel_conv, conv, x.detach())


def test_one_channel_conv_leaves_wider_outputs_and_tracing_to_the_module() -> None:
    x = torch.randn(2, 8, 6, 6)
    assert not one_channel_fast_path(nn.Conv2d(8, 3, 3, padding=1), x)  # three channels: a real convolution
    assert not one_channel_fast_path(nn.Conv2d(8, 1, 3, padding=1, padding_mode="reflect"), x)
    assert not one_channel_fast_path(nn.Conv2d(8, 1, 3), torch.quantize_per_tensor(x, 0.1, 0, torch.quint8))
    traced = fx.symbolic_trace(build_generator("maze", 100, 1, 32, ngf=8))
    assert "conv3" in {n.target for n in traced.graph.nodes if n.op == "call_module"}


@pytest.mark.parametrize(("name", "nz"), [("dfme", 256), ("maze", 100)])
def test_generators_give_the_same_images_with_and_without_gradients(
    name: str, nz: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(3)
    gen = prepare_model(build_generator(name, nz, 1, 32, ngf=8), "cpu").double().train()
    z = torch.randn(10, nz, dtype=F64)
    taken: list[tuple[str, bool]] = []

    def spy(name: str, real, check):  # noqa: ANN001, ANN202
        def run(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
            taken.append((name, check(conv, x)))
            return real(conv, x)

        return run

    monkeypatch.setattr(
        "msdefense.models.generators.upsample_conv", spy("upsample", upsample_conv, upsample_fast_path)
    )
    monkeypatch.setattr(
        "msdefense.models.generators.one_channel_conv", spy("last", one_channel_conv, one_channel_fast_path)
    )
    with torch.no_grad():
        fast = gen(z)  # the sub-pixel form
    plain = gen(z)  # the layers themselves (autograd records)
    assert plain.requires_grad and fast.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast, plain.detach(), rtol=0, atol=1e-12)
    # without gradients both fast paths; with them only the one-channel convolution
    assert taken == [("upsample", True), ("last", True), ("upsample", False), ("last", True)]
