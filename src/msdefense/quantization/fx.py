"""PTQ and QAT of an fp32 victim with PyTorch FX graph mode quantization.

``torch.ao.quantization.quantize_fx``: ``prepare_fx`` / ``prepare_qat_fx`` / ``convert_fx`` with
``get_default_qconfig_mapping(backend)`` / ``get_default_qat_qconfig_mapping(backend)``, on the
registered fp32 architecture itself. The original (Khaled et al. 2023, ICMLA, ``df/quantize.py``)
used eager mode on a separate "quantizable" network; docs/deviations.md (Quantized victims) lists
the differences. torch deprecates this API (its ``DeprecationWarning`` is left to show); why the
package has not moved to torchao's PT2E flow yet, with measurements: docs/quantization.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..schedules import cosine_schedule, sgd
from ..training import make_loader
from .recipe import QAT_MOMENTUM, QAT_WEIGHT_DECAY, QuantRecipe
from .victim import QuantizedVictim, quantized_engine


def prepare_graph(model: nn.Module, mode: str, backend: str, example: Tensor) -> nn.Module:
    """Trace and fuse ``model`` with observers (``ptq``, eval mode) or fake quantization (``qat``, train mode).

    Call inside :func:`quantized_engine`; ``model`` is traced in place. ``prepare_fx`` /
    ``prepare_qat_fx`` / ``convert_fx`` emit torch's ``DeprecationWarning`` (``torch.ao.quantization``
    is deprecated in favour of torchao's PT2E flow); it is deliberately not filtered here:
    docs/quantization.md says why the package stays on FX for now and until when.
    """
    if mode == "ptq":
        return prepare_fx(model.eval(), get_default_qconfig_mapping(backend), (example,))
    return prepare_qat_fx(model.train(), get_default_qat_qconfig_mapping(backend), (example,))


def _example(example_input: Tensor) -> Tensor:
    if not isinstance(example_input, Tensor) or example_input.dim() < 2:
        raise ValueError("example_input must be a batched tensor, e.g. of shape [1, C, H, W]")
    return example_input.detach().to("cpu", torch.float32)


@torch.no_grad()
def quantize_ptq(
    model_fp32: nn.Module,
    backend: str,
    calibration_batches: Iterable[Tensor],
    example_input: Tensor,
) -> QuantizedVictim:
    """Post-training static quantization with FX graph mode.

    A deep copy of ``model_fp32`` (never modified) is put in eval mode, traced and fused by ``prepare_fx``
    with ``get_default_qconfig_mapping(backend)``; the observers see every batch of ``calibration_batches``
    (image tensors ``[B, C, H, W]``, no labels; the caller picks how many); ``convert_fx`` then produces the
    int8 model. The original calibrated on the whole augmented training loader; the number of images is the
    recipe's ``calibration_images``.
    """
    example = _example(example_input)
    with quantized_engine(backend):
        prepared = prepare_graph(copy.deepcopy(model_fp32).cpu().float(), "ptq", backend, example)
        seen = 0
        for batch in calibration_batches:
            prepared(batch.to("cpu", torch.float32))
            seen += batch.shape[0]
        if seen == 0:
            raise ValueError("quantize_ptq needs at least one calibration batch")
        quantized = convert_fx(prepared)
    return QuantizedVictim(quantized, backend, "ptq", tuple(example.shape))


def _weight_change(model_fp32: nn.Module, prepared: nn.Module) -> tuple[float, int]:
    """Max |w_prepared − w_fp32| over conv/linear weights present under the same name in both models.

    FX fusion keeps the conv/linear name (``conv1`` becomes a fused ``ConvReLU2d`` / ``ConvBn2d`` whose
    ``weight`` is the conv weight), so names match; BN parameters are not compared.
    """
    reference = {k: v for k, v in model_fp32.named_parameters() if k.endswith("weight") and v.dim() >= 2}
    change, compared = 0.0, 0
    for name, param in prepared.named_parameters():
        ref = reference.get(name)
        if ref is not None and ref.shape == param.shape:
            diff = (param.detach().cpu().float() - ref.detach().cpu().float()).abs().max()
            change = max(change, float(diff))
            compared += 1
    return change, compared


def quantize_qat(
    model_fp32: nn.Module,
    backend: str,
    train_dataset: Dataset,
    recipe: QuantRecipe,
    *,
    seed: int,
    example_input: Tensor,
    device: torch.device | str = "cpu",
) -> tuple[QuantizedVictim, dict[str, Any]]:
    """Quantization-aware training with FX graph mode, then int8 conversion.

    A deep copy of ``model_fp32`` (never modified) in train mode is prepared by ``prepare_qat_fx`` with
    ``get_default_qat_qconfig_mapping(backend)`` (fake quantization of weights and activations, conv+BN
    folding) and fine-tuned for ``recipe.qat_epochs`` epochs with cross-entropy on the labels of
    ``train_dataset`` (items ``(x, y)``), SGD (lr ``recipe.qat_lr``, Nesterov momentum 0.9, weight decay 5e-4,
    per-step cosine schedule) and batches of ``recipe.qat_batch_size`` shuffled with ``seed``. Fine-tuning
    runs on ``device`` (fake quantization works on CUDA); conversion to int8 happens on the CPU.

    The optimizer holds the *prepared* model's parameters: the original bound it to the fp32 model, so its
    QAT never changed the quantized copy's weights. The returned ``info`` has ``weight_max_abs_change``
    (max |Δw| of conv/linear weights, prepared vs fp32, before conversion), ``weights_compared``, per-epoch
    ``history`` (loss, accuracy) and ``steps``.
    """
    if recipe.backend != backend:
        raise ValueError(f"recipe backend {recipe.backend!r} differs from backend {backend!r}")
    example = _example(example_input)
    dev = torch.device(device)
    loader = make_loader(train_dataset, batch_size=recipe.qat_batch_size, device=dev, shuffle=True, seed=seed)
    with quantized_engine(backend):
        prepared = prepare_graph(copy.deepcopy(model_fp32).cpu().float(), "qat", backend, example)
    prepared = prepared.to(dev)
    # the optimizer is built on the prepared model, whose forward the loss differentiates
    opt = sgd(
        prepared.parameters(),
        lr=recipe.qat_lr,
        momentum=QAT_MOMENTUM,
        nesterov=True,
        weight_decay=QAT_WEIGHT_DECAY,
    )
    sched = cosine_schedule(opt, recipe.qat_epochs * len(loader))
    history: list[dict[str, float]] = []
    steps = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in tqdm(
            range(1, recipe.qat_epochs + 1), desc=f"qat {backend}", unit="epoch", mininterval=2.0
        ):
            prepared.train()
            total_loss, hits, seen = 0.0, 0, 0
            for x, y in loader:
                x, y = x.to(dev, torch.float32), y.to(dev)
                logits = prepared(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                steps += 1
                total_loss += float(loss.detach()) * len(y)
                hits += int((logits.detach().argmax(-1) == y).sum())
                seen += len(y)
            history.append(
                {"epoch": epoch, "loss": total_loss / max(seen, 1), "accuracy": hits / max(seen, 1)}
            )
    change, compared = _weight_change(model_fp32, prepared)
    with quantized_engine(backend):
        quantized = convert_fx(prepared.cpu().eval())
    info: dict[str, Any] = {
        "weight_max_abs_change": change,
        "weights_compared": compared,
        "steps": steps,
        "history": history,
    }
    return QuantizedVictim(quantized, backend, "qat", tuple(example.shape)), info
