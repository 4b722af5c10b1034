"""An int8 victim as plain tensors plus a JSON layout, and back (no pickle, no TorchScript).

:func:`quantized_state` decomposes every quantized tensor into plain tensors (int8 values, scales,
zero points) described by a JSON layout in the metadata; :func:`rebuild_quantized` rebuilds the
graph by re-running the FX passes on the registered architecture and loads the state strictly.
The victim store (:mod:`msdefense.victims`) writes and reads the file.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.ao.quantization.quantize_fx import convert_fx

from ..models import build_model
from .fx import prepare_graph
from .recipe import MODES
from .victim import QuantizedVictim, quantized_engine

#: Version of the layout :func:`quantized_state` writes.
FORMAT_VERSION = "1"
#: Metadata keys :func:`rebuild_quantized` needs (:func:`quantized_state` gives the last five).
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
    are exactly the tensors the victim store writes; the safetensors header and
    metadata (a few kB) are not counted, so the figure does not depend on the metadata. The original
    compared file sizes of pickled / TorchScript files, which also include code and headers.
    """
    if isinstance(model, QuantizedVictim):
        with quantized_engine(model.backend):
            tensors, _, _ = flat_state(model)
    else:
        tensors, _, _ = flat_state(model)
    return sum(t.numel() * t.element_size() for t in tensors.values()) / 1e6


def quantized_state(qmodel: QuantizedVictim) -> tuple[dict[str, Tensor], dict[str, str]]:
    """An int8 victim as plain tensors plus the string metadata that describes how to rebuild it.

    The metadata holds ``quant_mode``, ``quant_backend``, ``quant_input_shape``, ``quant_layout``,
    ``quant_state_versions`` (JSON, see :func:`flat_state`) and ``quant_format``; the victim store
    (:mod:`msdefense.victims`) adds the keys every victim has and writes the file.
    """
    if not isinstance(qmodel, QuantizedVictim):
        raise TypeError("an int8 victim must be a QuantizedVictim (from quantize_ptq / quantize_qat)")
    with quantized_engine(qmodel.backend):
        tensors, layout, versions = flat_state(qmodel)
    meta = {
        "quant_mode": qmodel.mode,
        "quant_backend": qmodel.backend,
        "quant_input_shape": json.dumps(list(qmodel.input_shape)),
        "quant_layout": json.dumps(layout, sort_keys=True),
        "quant_state_versions": json.dumps(versions, sort_keys=True),
        "quant_format": FORMAT_VERSION,
    }
    return tensors, meta


def rebuild_quantized(
    meta: Mapping[str, str], tensors: Mapping[str, Tensor], source: str | os.PathLike = "<memory>"
) -> QuantizedVictim:
    """Rebuild an int8 victim from :func:`quantized_state`'s tensors and metadata (on the CPU).

    The graph is rebuilt by running the same FX passes (``prepare_fx`` for PTQ, ``prepare_qat_fx`` for QAT,
    then ``convert_fx``) with the same default qconfig mapping and engine on a freshly built
    ``build_model(arch, num_classes, in_channels)``, with one zero batch of the stored input shape as
    calibration; the stored int8 values, scales and zero points then replace every state entry
    (``load_state_dict`` is strict), so outputs are bit-identical to the saved model's. The global RNG is
    left untouched. ``source`` names the file in error messages.
    """
    for key in REQUIRED_METADATA:
        if key not in meta:
            raise ValueError(
                f"{source}: not an int8 victim (metadata lacks the key {key!r}); write it with "
                "msdefense.victims.save_victim"
            )
    if meta.get("quant_format", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"{source}: quantized format {meta['quant_format']!r}, expected {FORMAT_VERSION!r}")
    mode, backend = meta["quant_mode"], meta["quant_backend"]
    if mode not in MODES:
        raise ValueError(f"{source}: unknown quant_mode {mode!r}")
    shape = tuple(int(s) for s in json.loads(meta["quant_input_shape"]))
    layout: dict[str, Any] = json.loads(meta["quant_layout"])
    versions: dict[str, int] = json.loads(meta["quant_state_versions"])
    with quantized_engine(backend), torch.random.fork_rng(devices=[]):
        model = build_model(meta["arch"], int(meta["num_classes"]), int(meta["in_channels"]))
        example = torch.zeros(shape)
        prepared = prepare_graph(model, mode, backend, example).eval()
        with torch.no_grad():
            prepared(example)  # initialises the observers so conversion does not warn about them
        quantized = convert_fx(prepared)
        state = OrderedDict((key, _recompose(key, spec, tensors)) for key, spec in layout.items())
        state._metadata = OrderedDict((k, {"version": v}) for k, v in versions.items())  # type: ignore[attr-defined]
        quantized.load_state_dict(state, strict=True)
    return QuantizedVictim(quantized, backend, mode, shape)
