"""GRAD's ALL-ONES scores by propagation rules (msdefense.defenses.grad_ones) equal the
torch.func.jvp scores they replace, and models without a rule for every node fall back to jvp."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from msdefense.defenses.grad import GRAD
from msdefense.defenses.grad_ones import rules_for
from msdefense.models import build_model


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so every term of the folded rule counts."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) * 0.4 - 0.2)
    return model.eval()


@pytest.mark.parametrize(("arch", "channels"), [("resnet20", 3), ("lenet5", 1), ("wrn22_2", 3)])
def test_rules_equal_the_jvp_scores(arch: str, channels: int) -> None:
    torch.manual_seed(0)
    model = _randomise_bn(build_model(arch, 10, channels)).double()
    x = torch.randn(6, channels, 32, 32, dtype=torch.float64)
    probs = torch.softmax(model(x), -1)
    fast, generic = GRAD(model), GRAD(model, use_rules=False)
    assert fast.describe()["scores"] == "propagation rules" and generic.describe()["scores"] == "jvp"
    torch.testing.assert_close(fast.scores(x, probs), generic.scores(x, probs), rtol=1e-10, atol=1e-12)


def test_rules_in_float32_answer_like_the_jvp() -> None:
    """In float32 the two orders of rounding can put a pre-activation within 1e-6 of zero on
    different sides of a ReLU, which changes the tangent at that unit; the defended answers still
    agree for almost every row (the float64 test above checks the arithmetic itself)."""
    torch.manual_seed(0)
    model = _randomise_bn(build_model("resnet20", 10, 3))
    x = torch.randn(32, 3, 32, 32)
    probs = torch.softmax(model(x), -1)
    eps = [0.5, 1.0]
    fast = GRAD(model).perturb(x, probs, eps)
    generic = GRAD(model, use_rules=False).perturb(x, probs, eps)
    same = ((fast - generic).abs().amax(-1) < 1e-4).float().mean()
    assert same >= 0.9, f"only {same:.2f} of the rows agree"


def test_a_model_without_rules_falls_back_to_jvp() -> None:
    model = build_model("mobilenet_v2", 10, 3).eval()  # depthwise convolutions, ReLU6: no rules
    assert rules_for(model) is None
    assert GRAD(model).describe()["scores"] == "jvp"
    assert GRAD(build_model("lenet5", 10, 1), target="min_ip").describe()["scores"] == "jvp"


class _SharedActivation(nn.Module):
    """A folded conv-BN output read by a ReLU *and* a residual sum: the ReLU must not overwrite it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv3, self.bn3 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # only the ReLU reads bn1: overwritten in place
        z = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(torch.relu(z))) + z  # z has two readers: kept, negatives and all
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def test_in_place_relus_leave_shared_activations_intact() -> None:
    torch.manual_seed(0)
    model = _randomise_bn(_SharedActivation()).double()
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64)
    kept = x.clone()
    probs = torch.softmax(model(x), -1)
    fast, generic = GRAD(model), GRAD(model, use_rules=False)
    assert fast.describe()["scores"] == "propagation rules"
    torch.testing.assert_close(fast.scores(x, probs), generic.scores(x, probs), rtol=1e-10, atol=1e-12)
    assert torch.equal(x, kept)


def test_folded_constants_follow_parameters_changed_in_place() -> None:
    """The rules fold each conv-BN pair once and reuse it; an in-place change of a weight, a BN
    statistic or γ refolds (the cache is keyed on the tensors' version counters)."""
    torch.manual_seed(0)
    model = _randomise_bn(build_model("resnet20", 10, 3)).double()
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    probs = torch.softmax(model(x), -1)
    fast = GRAD(model)
    before = fast.scores(x, probs)
    torch.testing.assert_close(fast.scores(x, probs), before, rtol=0, atol=0)  # cached: the same
    with torch.no_grad():
        model.conv1.weight.mul_(1.5)
        model.bn1.running_var.add_(0.3)
        model.bn1.weight.mul_(0.5)
    after = fast.scores(x, probs)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, GRAD(model, use_rules=False).scores(x, probs), rtol=1e-10, atol=1e-12)
