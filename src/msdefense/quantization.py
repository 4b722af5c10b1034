"""Int8 victims: post-training static quantization (PTQ) and quantization-aware training (QAT).

Source: paper A ("Efficient Defense Against Model Stealing Attacks on CNNs"), reference
``seed-efficient-defense.md`` §11 (``df/quantize.py``): FP32 victims are quantized to int8 with PTQ or QAT
for a *server* backend (x86, the successor of fbgemm) or an *edge* backend (qnnpack, ARM), and the defenses
are evaluated on the int8 victim, which runs on the CPU.

Implementation: PyTorch FX graph mode quantization (``torch.ao.quantization.quantize_fx``:
``prepare_fx`` / ``prepare_qat_fx`` / ``convert_fx`` with ``get_default_qconfig_mapping(backend)`` /
``get_default_qat_qconfig_mapping(backend)``). Deviations from the reference code, which used eager mode:

- FX traces the registered fp32 architecture itself, so no hand-written fusion list, ``QuantStub`` wrapper or
  separate "quantizable" network is needed; the int8 victim is the quantized fp32 victim (the reference
  trained a different network inside ``quantize.py``).
- ``torch.backends.quantized.engine`` is set explicitly around every quantization step and every forward
  (:func:`quantized_engine`, :class:`QuantizedVictim`); the reference never set it.
- Bug B11 (§15) is fixed: the QAT optimizer is built on the parameters of the *prepared* (fake-quantized)
  model, so QAT really changes the weights; :func:`quantize_qat` reports by how much.
- No pickle / TorchScript: :func:`save_quantized` writes safetensors, decomposing every quantized tensor into
  plain tensors (int8 values, scales, zero points) described by a JSON layout in the metadata, and
  :func:`load_quantized` rebuilds the graph by re-running the FX passes on the registered architecture.

``torch.ao.quantization`` is deprecated in favour of torchao's PT2E flow (a separate package, not a dependency
here); its ``DeprecationWarning`` is silenced narrowly around the FX calls (:func:`_fx_api`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from msdefense.io import atomic_path
from msdefense.models import build_model

QuantMode = Literal["ptq", "qat"]
QuantBackend = Literal["x86", "qnnpack"]

MODES: tuple[str, ...] = ("ptq", "qat")
#: ``x86`` = server CPUs (FBGEMM/oneDNN kernels), ``qnnpack`` = edge / ARM mobile CPUs (reference §11).
BACKENDS: tuple[str, ...] = ("x86", "qnnpack")

#: Version of the safetensors layout written by :func:`save_quantized`.
FORMAT_VERSION = "1"
#: Metadata keys :func:`load_quantized` needs (``save_quantized`` fills the last four itself).
REQUIRED_METADATA: tuple[str, ...] = (
    "arch",
    "num_classes",
    "in_channels",
    "quant_mode",
    "quant_backend",
    "quant_input_shape",
    "quant_layout",
    "quant_state_versions",
)
_SEP = "::"  # separates a state-dict key from its parts; cannot occur in module attribute names

# QAT optimiser: the reference fine-tunes with the teacher's recipe (§11: SGD, Nesterov momentum, weight decay
# 5e-4, cosine schedule); lr, epochs and batch size come from the QuantRecipe.
_QAT_MOMENTUM = 0.9
_QAT_WEIGHT_DECAY = 5e-4


# --------------------------------------------------------------------------------------------- recipe


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class QuantRecipe:
    """How one int8 victim is made (config ``quantization`` section, reference §11).

    ``mode``: ``ptq`` (calibrate observers on ``calibration_images`` training images, then convert) or ``qat``
    (fine-tune with fake quantization for ``qat_epochs`` epochs, SGD lr ``qat_lr``, batch ``qat_batch_size``).
    ``backend``: ``x86`` (server) or ``qnnpack`` (edge). The QAT fields are checked in both modes so that one
    config section serves both; ``qat_epochs`` may be 0 only for PTQ.
    """

    mode: QuantMode
    backend: QuantBackend
    calibration_images: int
    qat_epochs: int
    qat_lr: float
    qat_batch_size: int

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"quantization field 'mode' must be one of {MODES}, got {self.mode!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"quantization field 'backend' must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("calibration_images", "qat_batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"quantization field {name!r} must be an integer >= 1, got {value!r}")
        min_epochs = 1 if self.mode == "qat" else 0
        if not _is_int(self.qat_epochs) or self.qat_epochs < min_epochs:
            raise ValueError(
                f"quantization field 'qat_epochs' must be an integer >= {min_epochs} for mode "
                f"{self.mode!r}, got {self.qat_epochs!r}"
            )
        lr = self.qat_lr
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"quantization field 'qat_lr' must be a finite number > 0, got {lr!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> QuantRecipe:
        """Build from a config mapping; keys that are not fields are ignored (as in ``SGDRecipe``).

        A missing field raises ``ValueError`` naming it. ``qat_lr`` may be a numeric string (PyYAML reads
        ``1e-3`` without a dot as a string).
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in cfg:
                raise ValueError(f"quantization recipe lacks the field {f.name!r}")
            values[f.name] = cfg[f.name]
        if isinstance(values["qat_lr"], str):
            try:
                values["qat_lr"] = float(values["qat_lr"])
            except ValueError:
                raise ValueError(
                    f"quantization field 'qat_lr' must be a number, got {values['qat_lr']!r}"
                ) from None
        return cls(**values)

    def to_metadata(self) -> dict[str, str]:
        """The recipe as safetensors metadata (string values), for :func:`save_quantized`."""
        return {"quant_recipe": json.dumps(asdict(self), sort_keys=True)}


# ------------------------------------------------------------------------------------------- helpers


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend not in torch.backends.quantized.supported_engines:
        raise RuntimeError(
            f"quantized engine {backend!r} is not available in this torch build "
            f"(supported: {torch.backends.quantized.supported_engines})"
        )


@contextmanager
def quantized_engine(backend: str) -> Iterator[None]:
    """Set ``torch.backends.quantized.engine`` to ``backend`` inside the block and restore it afterwards.

    The engine selects the int8 kernels (and the packing of weights), so quantization, conversion, loading and
    every forward of an int8 model must run under the backend it was made for.
    """
    _check_backend(backend)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = backend
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


@contextmanager
def _fx_api() -> Iterator[None]:
    """Silence only the ``DeprecationWarning`` that ``torch.ao.quantization``'s FX entry points emit.

    Recent torch releases (2.14.1 here) mark ``prepare_fx`` / ``prepare_qat_fx`` / ``convert_fx`` deprecated
    (migration target: torchao PT2E). The filter matches that message and category only; every other warning
    still shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning
        )
        yield


def _example(example_input: Tensor) -> Tensor:
    if not isinstance(example_input, Tensor) or example_input.dim() < 2:
        raise ValueError("example_input must be a batched tensor, e.g. of shape [1, C, H, W]")
    return example_input.detach().to("cpu", torch.float32)


# -------------------------------------------------------------------------------------- the victim


class QuantizedVictim(nn.Module):
    """An int8 model usable wherever an fp32 victim is: ``softmax(victim(x))`` works.

    ``forward`` moves ``x`` to the CPU as float32 (int8 kernels exist only there), runs the converted
    GraphModule under its quantized engine without autograd (the GRAD/MAD defenses differentiate fp32
    surrogates, never the victim) and returns float32 logits on ``x``'s original device.

    ``.to()`` / ``.cuda()`` / ``.half()`` are no-ops (the int8 model stays on the CPU), so code that moves
    victims to the compute device needs no special case. ``mode`` and ``input_shape`` record how the model
    was made; :func:`save_quantized` stores them so :func:`load_quantized` can rebuild the graph.
    """

    def __init__(
        self, model: nn.Module, backend: str, mode: str, input_shape: tuple[int, ...] | list[int]
    ) -> None:
        super().__init__()
        _check_backend(backend)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model = model.eval()
        self.backend = backend
        self.mode = mode
        self.input_shape = tuple(int(s) for s in input_shape)

    def forward(self, x: Tensor) -> Tensor:
        device = x.device
        with quantized_engine(self.backend), torch.no_grad():
            out = self.model(x.detach().to("cpu", torch.float32))
        return out.float().to(device)

    def train(self, mode: bool = True) -> QuantizedVictim:
        """Always stays in eval mode: an int8 model has no training behaviour."""
        return super().train(False)

    def _apply(self, fn: Any, recurse: bool = True) -> QuantizedVictim:
        # Device / dtype moves would break the quantized tensors and packed weights; keep them on the CPU.
        return self

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, mode={self.mode!r}, input_shape={self.input_shape}"


# ------------------------------------------------------------------------------------ quantization


@torch.no_grad()
def quantize_ptq(
    model_fp32: nn.Module,
    backend: str,
    calibration_batches: Iterable[Tensor],
    example_input: Tensor,
) -> QuantizedVictim:
    """Post-training static quantization (reference §11 "PTQ") with FX graph mode.

    A deep copy of ``model_fp32`` (never modified) is put in eval mode, traced and fused by ``prepare_fx``
    with ``get_default_qconfig_mapping(backend)``; the observers see every batch of ``calibration_batches``
    (image tensors ``[B, C, H, W]``, no labels; the caller picks how many); ``convert_fx`` then produces the
    int8 model. The reference calibrated on the whole augmented training loader; the number of images is the
    recipe's ``calibration_images``.
    """
    example = _example(example_input)
    with quantized_engine(backend), _fx_api():
        model = copy.deepcopy(model_fp32).cpu().float().eval()
        prepared = prepare_fx(model, get_default_qconfig_mapping(backend), (example,))
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
    seed: int,
    example_input: Tensor,
    device: torch.device | str = "cpu",
) -> tuple[QuantizedVictim, dict[str, Any]]:
    """Quantization-aware training (reference §11 "QAT") with FX graph mode, then int8 conversion.

    A deep copy of ``model_fp32`` (never modified) in train mode is prepared by ``prepare_qat_fx`` with
    ``get_default_qat_qconfig_mapping(backend)`` (fake quantization of weights and activations, conv+BN
    folding) and fine-tuned for ``recipe.qat_epochs`` epochs with cross-entropy on the labels of
    ``train_dataset`` (items ``(x, y)``), SGD (lr ``recipe.qat_lr``, Nesterov momentum 0.9, weight decay 5e-4,
    per-step cosine schedule) and batches of ``recipe.qat_batch_size`` shuffled with ``seed``. Fine-tuning
    runs on ``device`` (fake quantization works on CUDA); conversion to int8 happens on the CPU.

    Fix of bug B11 (§15): the optimizer holds the *prepared* model's parameters; the reference bound it to
    the original fp32 model, so QAT never changed the quantized copy's weights. The returned ``info`` has
    ``weight_max_abs_change`` (max |Δw| of conv/linear weights, prepared vs fp32, before conversion),
    ``weights_compared``, per-epoch ``history`` (loss, accuracy) and ``steps``.
    """
    if recipe.backend != backend:
        raise ValueError(f"recipe backend {recipe.backend!r} differs from backend {backend!r}")
    example = _example(example_input)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_dataset, batch_size=recipe.qat_batch_size, shuffle=True, generator=gen)
    with quantized_engine(backend), _fx_api():
        model = copy.deepcopy(model_fp32).cpu().float().train()
        prepared = prepare_qat_fx(model, get_default_qat_qconfig_mapping(backend), (example,))
    prepared = prepared.to(dev)
    # B11 fix: the optimizer is built on the prepared model, whose forward the loss differentiates.
    opt = torch.optim.SGD(
        prepared.parameters(),
        lr=recipe.qat_lr,
        momentum=_QAT_MOMENTUM,
        nesterov=True,
        weight_decay=_QAT_WEIGHT_DECAY,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, recipe.qat_epochs * len(loader)))
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
    with quantized_engine(backend), _fx_api():
        quantized = convert_fx(prepared.cpu().eval())
    info: dict[str, Any] = {
        "weight_max_abs_change": change,
        "weights_compared": compared,
        "steps": steps,
        "history": history,
    }
    return QuantizedVictim(quantized, backend, "qat", tuple(example.shape)), info


# ------------------------------------------------------------------------------- state decomposition


def _decompose(key: str, value: Any, tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Add the plain tensors of one state-dict entry to ``tensors``; return its JSON layout spec."""
    if isinstance(value, Tensor) and value.is_quantized:
        spec: dict[str, Any] = {"kind": "qtensor", "dtype": str(value.dtype).removeprefix("torch.")}
        scheme = value.qscheme()
        tensors[f"{key}{_SEP}int_repr"] = value.int_repr().contiguous()
        if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            spec["scheme"] = "per_tensor"
            tensors[f"{key}{_SEP}scale"] = torch.tensor(value.q_scale(), dtype=torch.float64)
            tensors[f"{key}{_SEP}zero_point"] = torch.tensor(value.q_zero_point(), dtype=torch.int64)
        elif scheme in (torch.per_channel_affine, torch.per_channel_symmetric):
            spec["scheme"] = "per_channel"
            spec["axis"] = int(value.q_per_channel_axis())
            tensors[f"{key}{_SEP}scales"] = value.q_per_channel_scales().contiguous()
            tensors[f"{key}{_SEP}zero_points"] = value.q_per_channel_zero_points().contiguous()
        else:
            raise TypeError(f"state entry {key!r}: unsupported quantization scheme {scheme}")
        return spec
    if isinstance(value, Tensor):
        tensors[key] = value.detach().cpu().contiguous()
        return {"kind": "tensor"}
    if isinstance(value, tuple | list):
        return {
            "kind": "tuple",
            "items": [_decompose(f"{key}{_SEP}{i}", v, tensors) for i, v in enumerate(value)],
        }
    if isinstance(value, torch.dtype):
        return {"kind": "dtype", "value": str(value).removeprefix("torch.")}
    if value is None:
        return {"kind": "none"}
    raise TypeError(f"state entry {key!r} has unsupported type {type(value).__name__}")


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} in quantized layout")
    return dtype


def _recompose(key: str, spec: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> Any:
    """Inverse of :func:`_decompose`."""
    kind = spec["kind"]
    if kind == "tensor":
        return tensors[key]
    if kind == "qtensor":
        ints = tensors[f"{key}{_SEP}int_repr"]
        dtype = _dtype(spec["dtype"])
        if spec["scheme"] == "per_tensor":
            scale = float(tensors[f"{key}{_SEP}scale"])
            zero_point = int(tensors[f"{key}{_SEP}zero_point"])
            q = torch._make_per_tensor_quantized_tensor(ints, scale, zero_point)
        else:
            q = torch._make_per_channel_quantized_tensor(
                ints, tensors[f"{key}{_SEP}scales"], tensors[f"{key}{_SEP}zero_points"], int(spec["axis"])
            )
        if q.dtype != dtype:
            raise ValueError(f"{key!r}: rebuilt dtype {q.dtype} differs from the stored {dtype}")
        return q
    if kind == "tuple":
        return tuple(_recompose(f"{key}{_SEP}{i}", s, tensors) for i, s in enumerate(spec["items"]))
    if kind == "dtype":
        return _dtype(spec["value"])
    if kind == "none":
        return None
    raise ValueError(f"{key!r}: unknown layout kind {kind!r}")


def _unwrap(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, QuantizedVictim) else model


def flat_state(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, int]]:
    """The model's state dict as plain tensors, a JSON-able layout describing how to rebuild each entry, and
    the per-module state-dict versions (``state_dict()._metadata``, which ``torch.save`` keeps too).

    Quantized tensors become ``<key>::int_repr`` (int8/uint8 values) with ``::scale`` / ``::zero_point``
    (per-tensor) or ``::scales`` / ``::zero_points`` (per-channel, axis in the layout); packed linear params
    ``(weight, bias)`` become ``<key>::0`` / ``<key>::1``. A float model maps to its own state dict. The
    versions matter: quantized ``Linear`` reads its packed params only from a version-3 state dict.
    """
    state = _unwrap(model).state_dict()
    tensors: dict[str, Tensor] = {}
    layout = {key: _decompose(key, value, tensors) for key, value in state.items()}
    versions = {
        prefix: int(info["version"])
        for prefix, info in getattr(state, "_metadata", {}).items()
        if isinstance(info, Mapping) and "version" in info
    }
    return tensors, layout, versions


def model_size_mb(model: nn.Module) -> float:
    """Bytes of the model's weights as this package stores them, in MB (10⁶ bytes).

    Measures the sum of ``nbytes`` of the plain tensors of :func:`flat_state`: for an fp32 model the state
    dict (float32 weights, biases, BN statistics); for an int8 model the int8 weight values plus their scales
    (float64) and zero points (int64), the float32 biases, and the activation scales / zero points. These
    are exactly the tensors :func:`save_quantized` / ``io.save_model`` write; the safetensors header and
    metadata (a few kB) are not counted, so the figure does not depend on the metadata. The reference
    compared file sizes of pickled / TorchScript files, which also include code and headers.
    """
    if isinstance(model, QuantizedVictim):
        with quantized_engine(model.backend):
            tensors, _, _ = flat_state(model)
    else:
        tensors, _, _ = flat_state(model)
    return sum(t.numel() * t.element_size() for t in tensors.values()) / 1e6


# ------------------------------------------------------------------------------------------- files


def save_quantized(qmodel: QuantizedVictim, path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Write an int8 victim as safetensors (no pickle), atomically.

    ``metadata`` must hold ``arch``, ``num_classes`` and ``in_channels`` (as for fp32 victims; add e.g.
    ``dataset`` and ``QuantRecipe.to_metadata()``); this function adds ``quant_mode``, ``quant_backend``,
    ``quant_input_shape``, ``quant_layout``, ``quant_state_versions`` (JSON, see :func:`flat_state`) and
    ``quant_format``.
    """
    if not isinstance(qmodel, QuantizedVictim):
        raise TypeError("save_quantized expects a QuantizedVictim (from quantize_ptq / quantize_qat)")
    meta = {str(k): str(v) for k, v in metadata.items()}
    for key in ("arch", "num_classes", "in_channels"):
        if key not in meta:
            raise ValueError(f"save_quantized: metadata lacks the key {key!r}")
    with quantized_engine(qmodel.backend):
        tensors, layout, versions = flat_state(qmodel)
    meta.update(
        quant_mode=qmodel.mode,
        quant_backend=qmodel.backend,
        quant_input_shape=json.dumps(list(qmodel.input_shape)),
        quant_layout=json.dumps(layout, sort_keys=True),
        quant_state_versions=json.dumps(versions, sort_keys=True),
        quant_format=FORMAT_VERSION,
    )
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_quantized(path: str | os.PathLike) -> tuple[QuantizedVictim, dict[str, str]]:
    """Rebuild an int8 victim written by :func:`save_quantized`; returns it (on the CPU) and the metadata.

    The graph is rebuilt by running the same FX passes (``prepare_fx`` for PTQ, ``prepare_qat_fx`` for QAT,
    then ``convert_fx``) with the same default qconfig mapping and engine on a freshly built
    ``build_model(arch, num_classes, in_channels)``, with one zero batch of the stored input shape as
    calibration; the stored int8 values, scales and zero points then replace every state entry
    (``load_state_dict`` is strict), so outputs are bit-identical to the saved model's. The global RNG is
    left untouched.
    """
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        meta = dict(fh.metadata() or {})
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    for key in REQUIRED_METADATA:
        if key not in meta:
            raise ValueError(
                f"{path}: not a quantized victim (metadata lacks the key {key!r}); write it with save_quantized"
            )
    if meta.get("quant_format", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"{path}: quantized format {meta['quant_format']!r}, expected {FORMAT_VERSION!r}")
    mode, backend = meta["quant_mode"], meta["quant_backend"]
    if mode not in MODES:
        raise ValueError(f"{path}: unknown quant_mode {mode!r}")
    shape = tuple(int(s) for s in json.loads(meta["quant_input_shape"]))
    layout: dict[str, Any] = json.loads(meta["quant_layout"])
    versions: dict[str, int] = json.loads(meta["quant_state_versions"])
    with quantized_engine(backend), _fx_api(), torch.random.fork_rng(devices=[]):
        model = build_model(meta["arch"], int(meta["num_classes"]), int(meta["in_channels"]))
        example = torch.zeros(shape)
        if mode == "ptq":
            prepared = prepare_fx(model.eval(), get_default_qconfig_mapping(backend), (example,))
        else:
            prepared = prepare_qat_fx(model.train(), get_default_qat_qconfig_mapping(backend), (example,))
        prepared.eval()
        with torch.no_grad():
            prepared(example)  # initialises the observers so conversion does not warn about them
        quantized = convert_fx(prepared)
        state = OrderedDict((key, _recompose(key, spec, tensors)) for key, spec in layout.items())
        state._metadata = OrderedDict((k, {"version": v}) for k, v in versions.items())  # type: ignore[attr-defined]
        quantized.load_state_dict(state, strict=True)
    return QuantizedVictim(quantized, backend, mode, shape), meta


def is_quantized_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file written by :func:`save_quantized` (reads the header only)."""
    with safe_open(str(Path(path)), framework="pt", device="cpu") as fh:
        return "quant_layout" in (fh.metadata() or {})
