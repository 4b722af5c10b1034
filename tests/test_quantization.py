"""Int8 victims (issue 6): PTQ / QAT with FX graph mode on both backends, safetensors round trip, size."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from msdefense.io import save_tensors
from msdefense.models import build_model
from msdefense.quantization import (
    QuantizedVictim,
    QuantRecipe,
    model_size_mb,
    quantize_ptq,
    quantize_qat,
    quantized_state,
    rebuild_quantized,
)
from msdefense.victims import VictimInfo, read_victim, read_victim_info, save_victim

BACKENDS = ("x86", "qnnpack")
K = 10
EXAMPLE = torch.zeros(1, 1, 32, 32)
META = {"arch": "lenet5", "num_classes": str(K), "in_channels": "1", "dataset": "synthetic"}


def _info(kind: str, **extra: str) -> VictimInfo:
    return VictimInfo(
        kind=kind, arch="lenet5", dataset="synthetic", num_classes=K, in_channels=1, extra=extra
    )


def _task(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """A separable 10-class task: a fixed random template per class plus noise."""
    templates = torch.randn(K, 1, 32, 32, generator=torch.Generator().manual_seed(1234))
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=gen)
    return templates[y] + 0.5 * torch.randn(n, 1, 32, 32, generator=gen), y


def _recipe(mode: str, backend: str, **over) -> QuantRecipe:
    cfg = {"mode": mode, "backend": backend, "calibration_images": 128, "qat_epochs": 1}
    cfg.update(qat_lr=0.05, qat_batch_size=32)
    return QuantRecipe.from_config({**cfg, **over})


def _state_copy(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def data() -> dict[str, Tensor]:
    x, y = _task(256, seed=0)
    xt, yt = _task(200, seed=1)
    return {"x": x, "y": y, "x_test": xt, "y_test": yt}


@pytest.fixture(scope="module")
def fp32(data) -> nn.Module:
    """LeNet-5 trained a few Adam steps on the synthetic task (near-perfect test accuracy)."""
    torch.manual_seed(0)
    model = build_model("lenet5", K, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for step in range(60):
        i = torch.arange(step * 32, step * 32 + 32) % len(data["y"])
        loss = F.cross_entropy(model(data["x"][i]), data["y"][i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def ptq(fp32, data) -> dict[str, QuantizedVictim]:
    batches = list(data["x"][:128].split(32))
    return {b: quantize_ptq(fp32, b, batches, EXAMPLE) for b in BACKENDS}


@pytest.fixture(scope="module")
def qat(fp32, data) -> dict[str, tuple[QuantizedVictim, dict]]:
    # Labels shifted by one class: the trained model is wrong on all of them, so the gradients are large and
    # four SGD steps must move the weights by more than one quantization step (if they reach the weights).
    train = TensorDataset(data["x"][:128], (data["y"][:128] + 1) % K)
    before = _state_copy(fp32)
    out = {
        b: quantize_qat(fp32, b, train, _recipe("qat", b), seed=0, example_input=EXAMPLE) for b in BACKENDS
    }
    after = fp32.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "quantize_qat mutated the fp32 model"
    return out


def test_fp32_fixture_learned_the_task(fp32, data) -> None:
    with torch.no_grad():
        acc = (fp32(data["x_test"]).argmax(-1) == data["y_test"]).float().mean()
    assert acc >= 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_ptq_outputs_probability_vectors(ptq, data, backend) -> None:
    victim = ptq[backend]
    engine = torch.backends.quantized.engine
    logits = victim(data["x_test"][:17])
    assert torch.backends.quantized.engine == engine  # restored after forward
    assert logits.shape == (17, K) and logits.dtype == torch.float32 and logits.device.type == "cpu"
    p = torch.softmax(victim(data["x_test"][:17].double()), -1)  # non-float32 input is accepted
    assert (p >= 0).all() and torch.allclose(p.sum(-1), torch.ones(17), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ptq_agrees_with_fp32(fp32, ptq, data, backend) -> None:
    x = data["x_test"]
    with torch.no_grad():
        ref = fp32(x)
    out = ptq[backend](x)
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.95
    assert (out.argmax(-1) == data["y_test"]).float().mean() >= 0.9


def test_ptq_leaves_fp32_model_untouched(fp32, data) -> None:
    before = _state_copy(fp32)
    quantize_ptq(fp32, "qnnpack", [data["x"][:16]], EXAMPLE)
    after = fp32.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.dtype == torch.float32 for p in fp32.parameters())


def _max_rounding_ratio(victim: QuantizedVictim, fp32: nn.Module) -> float:
    """max over conv/linear layers of |dequant(w_int8) − w_fp32| / scale.

    ≤ 0.5 when the int8 weights are the fp32 weights rounded (PTQ, or QAT whose optimizer never touched the
    prepared model, as in the original code); > 1 when training moved them by more than one quantization step.
    """
    fp32_modules = dict(fp32.named_modules())
    ratio, layers = 0.0, 0
    for name, module in victim.model.named_modules():
        weight_fn = getattr(module, "weight", None)
        if not callable(weight_fn) or name not in fp32_modules:
            continue
        qw = weight_fn()
        if qw.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            shape = [-1] + [1] * (qw.dim() - 1)
            scale = qw.q_per_channel_scales().reshape(shape).float()
        else:
            scale = torch.tensor(qw.q_scale())
        diff = (qw.dequantize() - fp32_modules[name].weight.detach()).abs() / scale
        ratio, layers = max(ratio, float(diff.max())), layers + 1
    assert layers == 5  # conv1..3, fc1, fc2
    return ratio


@pytest.mark.parametrize("backend", BACKENDS)
def test_qat_changes_weights(fp32, ptq, qat, backend) -> None:
    victim, info = qat[backend]
    assert info["weights_compared"] == 5 and info["steps"] == 4
    assert info["weight_max_abs_change"] > 0  # exactly 0 when the optimizer holds the fp32 weights
    assert _max_rounding_ratio(victim, fp32) > 1.0
    assert _max_rounding_ratio(ptq[backend], fp32) <= 0.5 + 1e-3  # control: PTQ only rounds


@pytest.mark.parametrize("mode", ["ptq", "qat"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_bit_identical(ptq, qat, data, tmp_path, backend, mode) -> None:
    victim = ptq[backend] if mode == "ptq" else qat[backend][0]
    path = tmp_path / f"{mode}_{backend}.safetensors"
    save_victim(victim, path, _info("int8", **_recipe(mode, backend).to_metadata()))
    assert read_victim_info(path).kind == "int8"
    loaded, info = read_victim(path, kinds=("int8",))
    meta = info.extra
    assert isinstance(loaded, QuantizedVictim)
    assert (loaded.backend, loaded.mode, meta["quant_backend"], meta["quant_mode"]) == (
        backend,
        mode,
        backend,
        mode,
    )
    assert QuantRecipe.from_config(json.loads(meta["quant_recipe"])) == _recipe(mode, backend)
    x = data["x_test"][:64]
    assert torch.equal(loaded(x), victim(x))
    assert list(tmp_path.iterdir()) == [path]  # atomic write leaves no temporary file


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_size_at_most_30_percent(fp32, ptq, backend) -> None:
    fp32_mb = model_size_mb(fp32)
    assert fp32_mb == pytest.approx(61_706 * 4 / 1e6)  # LeNet-5 parameters, float32
    assert model_size_mb(ptq[backend]) <= 0.30 * fp32_mb


def test_victim_stays_on_cpu_in_eval(ptq, data) -> None:
    victim = copy.deepcopy(ptq["x86"])
    assert victim.to(torch.float16) is victim and not victim.train().training
    assert victim(data["x_test"][:4]).dtype == torch.float32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "int4"),
        ("backend", "fbgemm"),
        ("calibration_images", 0),
        ("qat_epochs", 0),
        ("qat_lr", -1.0),
        ("qat_lr", "fast"),
        ("qat_batch_size", 1.5),
    ],
)
def test_bad_recipe_field_raises(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        _recipe(**{"mode": "qat", "backend": "x86", field: value})


def test_recipe_from_config() -> None:
    recipe = _recipe("ptq", "qnnpack", qat_epochs=0, qat_lr="1e-3", extra_key=1)
    assert recipe.qat_lr == 1e-3 and recipe.qat_epochs == 0
    cfg = {"mode": "ptq", "backend": "x86", "calibration_images": 8, "qat_epochs": 1, "qat_lr": 0.1}
    with pytest.raises(ValueError, match="qat_batch_size"):
        QuantRecipe.from_config(cfg)


def test_rebuild_rejects_state_without_quant_metadata(fp32, ptq, tmp_path) -> None:
    tensors, meta = quantized_state(ptq["x86"])
    with pytest.raises(ValueError, match="lacks the key 'arch'"):
        rebuild_quantized(meta, tensors)
    with pytest.raises(ValueError, match="not an int8 victim .* 'quant_mode'"):
        rebuild_quantized(META, tensors)
    bare = tmp_path / "bare.safetensors"
    save_tensors(fp32.state_dict(), bare)
    with pytest.raises(ValueError, match="metadata key 'kind'"):
        read_victim(bare)
    fp32_victim = tmp_path / "fp32.safetensors"
    save_victim(fp32, fp32_victim, _info("fp32"))
    assert read_victim_info(fp32_victim).kind == "fp32"
    with pytest.raises(ValueError, match="fp32 model where int8"):
        read_victim(fp32_victim, kinds=("int8",))
    with pytest.raises(TypeError, match="QuantizedVictim"):
        save_victim(fp32, tmp_path / "x.safetensors", _info("int8"))
