"""Model registry: exact parameter counts vs the original code's model zoo, output shapes, error messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from msdefense.models import ARCHITECTURES, GENERATORS, build_generator, build_model


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Tiny forward passes: intra-op threading only adds contention (10-50× slower on a busy 2-core box)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Counts of the MISLEADER / DFME / MAZE code's networks (computed from their layer definitions; ResNet-18-8x
# matches the DFME log, 11,173,962) unless noted.
CLASSIFIER_COUNTS = [
    ("resnet18_8x", 10, 3, 11_173_962),
    ("resnet18_8x", 100, 3, 11_220_132),
    ("resnet34_8x", 10, 3, 21_282_122),
    ("resnet34_8x", 100, 3, 21_328_292),
    ("mobilenet_v2", 10, 3, 2_236_682),
    ("mobilenet_v2", 100, 3, 2_351_972),
    ("densenet121", 10, 3, 6_956_426),
    ("densenet121", 100, 3, 7_048_676),
    ("lenet5", 10, 1, 61_706),
    ("lenet5half", 10, 1, 15_738),
    ("lenet5fifth", 10, 1, 9_884),
    ("wrn22_2", 10, 3, 1_079_642),
    ("wrn22_2", 100, 3, 1_091_252),
    # Not in those code bases. CIFAR ResNets use option-B (1×1 conv + BN) projection shortcuts, like
    # Khaled et al.'s bearpaw-derived code; 272,474 / 466,906 / 855,770 are the well-known option-B counts
    # (option A, parameter-free, would give 269,722 / 464,154 / 853,018).
    ("resnet20", 10, 3, 272_474),
    ("resnet32", 10, 3, 466_906),
    ("resnet56", 10, 3, 855_770),
    # WRN-40-2 (Zagoruyko & Komodakis), ≈2.24M; dropout adds no parameters.
    ("wrn40_2", 10, 3, 2_243_546),
    # torchvision counts with a 10-way fc instead of the 1000-way head (21,797,672 - 513,000 + 5,130 etc.).
    ("resnet34_imagenet", 10, 3, 21_289_802),
    ("resnet50_imagenet", 10, 3, 23_528_522),
]


@pytest.mark.parametrize(("name", "num_classes", "in_channels", "expected"), CLASSIFIER_COUNTS)
def test_classifier_param_count(name: str, num_classes: int, in_channels: int, expected: int) -> None:
    assert n_params(build_model(name, num_classes, in_channels)) == expected


@pytest.mark.parametrize(
    ("name", "nz", "nc", "expected"),
    [("dfme", 256, 3, 2_329_091), ("dfme", 256, 1, 2_327_937), ("maze", 100, 3, 1_051_145)],
)
def test_generator_param_count(name: str, nz: int, nc: int, expected: int) -> None:
    assert n_params(build_generator(name, nz, nc, 32)) == expected


IMAGENET = {"resnet34_imagenet", "resnet50_imagenet"}


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_classifier_forward_shape(name: str, in_channels: int) -> None:
    num_classes = 7
    model = build_model(name, num_classes, in_channels).eval()
    size = 64 if name in IMAGENET else 32
    x = torch.randn(2, in_channels, size, size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


def test_expected_architectures_registered() -> None:
    expected = {
        "lenet5",
        "lenet5half",
        "lenet5fifth",
        "resnet20",
        "resnet32",
        "resnet56",
        "resnet18_8x",
        "resnet34_8x",
        "wrn40_2",
        "wrn22_2",
        "mobilenet_v2",
        "densenet121",
        "resnet34_imagenet",
        "resnet50_imagenet",
    }
    assert expected <= set(ARCHITECTURES)
    assert {"dfme", "maze"} <= set(GENERATORS)


def test_unknown_architecture_raises_with_known_names() -> None:
    with pytest.raises(KeyError) as exc:
        build_model("resnet9000", 10)
    assert "resnet9000" in str(exc.value)
    assert "resnet18_8x" in str(exc.value) and "lenet5" in str(exc.value)


def test_unknown_generator_raises_with_known_names() -> None:
    with pytest.raises(KeyError) as exc:
        build_generator("stylegan", 128)
    assert "dfme" in str(exc.value) and "maze" in str(exc.value)


@pytest.mark.parametrize(("name", "nz"), [("dfme", 256), ("maze", 100)])
@pytest.mark.parametrize("nc", [1, 3])
def test_generator_output_shape(name: str, nz: int, nc: int) -> None:
    gen = build_generator(name, nz, nc, 32)
    with torch.no_grad():
        out = gen(torch.randn(4, nz))
    assert out.shape == (4, nc, 32, 32)
    # pre-tanh output: the final BN (train mode) standardises each channel over the batch, so values exceed (-1, 1)
    assert out.abs().max() > 1


def test_generator_mnist_size() -> None:
    with torch.no_grad():
        out = build_generator("maze", 100, 1, 28)(torch.randn(2, 100))
    assert out.shape == (2, 1, 28, 28)


def test_dfme_final_bn_affine_free_maze_affine() -> None:
    dfme_bn = build_generator("dfme", 256, 3).conv_blocks2[-1]
    maze_bn = build_generator("maze", 100, 3).bn3
    assert isinstance(dfme_bn, nn.BatchNorm2d) and not dfme_bn.affine
    assert isinstance(maze_bn, nn.BatchNorm2d) and maze_bn.affine


def test_wrn_dropout_is_configurable() -> None:
    from msdefense.models.wide_resnet import wrn22_2, wrn40_2

    assert wrn40_2(10, 3).block1.layer[0].drop_rate == 0.3
    assert wrn40_2(10, 3, drop_rate=0.0).block1.layer[0].drop_rate == 0.0
    assert wrn22_2(10, 3).block1.layer[0].drop_rate == 0.0


SMALL_ARCHS = ["resnet20", "lenet5", "lenet5half", "mobilenet_v2", "wrn22_2"]


@pytest.mark.parametrize("name", SMALL_ARCHS)
def test_channels_last_layout_keeps_outputs_and_gradients(name: str) -> None:
    """prepare_model's channels-last layout is a speed choice only: same outputs (float32, up to
    rounding) and the same weight gradients (float64, where summation order cannot hide a wrong
    gradient: float32 gradients of the deeper nets differ by up to ~0.1% of their scale between
    layouts on some CPUs), and contiguous weights when stored."""
    from msdefense.io import safetensors_bytes
    from msdefense.training import prepare_model

    in_ch = 1 if name.startswith("lenet") else 3
    torch.manual_seed(0)
    plain = build_model(name, 10, in_ch).eval()  # eval: no dropout draws, batch-free BN
    fast = prepare_model(build_model(name, 10, in_ch), "cpu").eval()
    fast.load_state_dict(plain.state_dict())
    assert any(p.dim() == 4 and not p.is_contiguous() for p in fast.parameters())
    x = torch.randn(4, in_ch, 32, 32)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
    assert safetensors_bytes(fast.state_dict()) == safetensors_bytes(plain.state_dict())
    plain, fast, x = plain.double(), fast.double(), x.double()
    assert any(p.dim() == 4 and not p.is_contiguous() for p in fast.parameters())
    a, b = plain(x), fast(x)
    torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    a.square().sum().backward()
    b.square().sum().backward()
    for (k, p), q in zip(plain.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-11, msg=k)


@pytest.mark.parametrize(("name", "nz"), [("dfme", 256), ("maze", 100)])
def test_generator_channels_last_matches_default_layout(name: str, nz: int) -> None:
    """The generators run channels-last internally; a reference forward in the default layout
    (the same modules, called one by one on contiguous maps) gives the same images."""
    torch.manual_seed(0)
    gen = build_generator(name, nz, 3, 32, ngf=8).train()
    z = torch.randn(16, nz)
    out = gen(z)
    if name == "dfme":
        h = gen.l1(z).view(16, -1, gen.init_size, gen.init_size)
        h = torch.nn.functional.interpolate(gen.conv_blocks0(h), scale_factor=2)
        h = torch.nn.functional.interpolate(gen.conv_blocks1(h), scale_factor=2)
        ref = gen.conv_blocks2(h)
    else:
        h = gen.bn0(gen.linear(z).view(16, gen.width, gen.start_dim, gen.start_dim))
        h = gen.relu1(gen.bn1(gen.conv1(gen.up1(h))))
        h = gen.relu2(gen.bn2(gen.conv2(gen.up2(h))))
        ref = gen.bn3(gen.conv3(h))
    assert out.is_contiguous(memory_format=torch.channels_last) and ref.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_gradient_has_its_parameters_layout(name: str) -> None:
    """Outside the workflow a model's parameters are contiguous, and so must every gradient be,
    as ``torch.autograd.grad`` returns it (no accumulation fixes its layout there): the original
    GRAD code flattens them with ``view(-1)``. In the workflow's channels-last models each
    gradient has its parameter's strides."""
    from msdefense.training import prepare_model

    size = 64 if name in IMAGENET else 32
    x = torch.randn(2, 1 if name.startswith("lenet") else 3, size, size)
    for prepared in (False, True):
        torch.manual_seed(0)
        model = build_model(name, 5, x.shape[1])
        if prepared:
            model = prepare_model(model, "cpu")
        named = list(model.train().named_parameters())
        grads = torch.autograd.grad(model(x).logsumexp(-1).sum(), [p for _, p in named])
        for (pname, p), grad in zip(named, grads, strict=True):
            if prepared:
                assert grad.stride() == p.stride(), (pname, grad.stride(), p.stride())
            else:
                assert grad.is_contiguous(), pname
                grad.view(-1)
