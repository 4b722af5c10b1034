"""Int8 victims: post-training static quantization (PTQ) and quantization-aware training (QAT).

Source: Khaled et al. 2023, "Efficient Defense Against Model Stealing Attacks on Convolutional
Neural Networks" (ICMLA), code ``df/quantize.py``: fp32 victims are quantized to int8 with PTQ or
QAT for a *server* backend (x86, the successor of fbgemm) or an *edge* backend (qnnpack, ARM), and
the defenses are evaluated on the int8 victim, which runs on the CPU. Method and defaults:
docs/methods.md (Quantization); differences from that code: docs/deviations.md (Quantized victims).

Modules: :mod:`.recipe` (:class:`QuantRecipe`), :mod:`.victim` (:class:`QuantizedVictim`, the
quantized engine), :mod:`.fx` (:func:`quantize_ptq`, :func:`quantize_qat`), :mod:`.state` (the
plain-tensor form the victim store writes, :func:`model_size_mb`).

- FX traces the registered fp32 architecture itself, so no hand-written fusion list, ``QuantStub``
  wrapper or separate "quantizable" network is needed; the int8 victim is the quantized fp32 victim.
- ``torch.backends.quantized.engine`` is set explicitly around every quantization step and every
  forward (:func:`quantized_engine`, :class:`QuantizedVictim`).
- The QAT optimizer is built on the parameters of the *prepared* (fake-quantized) model, so QAT
  really changes the weights (the original's optimizer held the fp32 model's parameters);
  :func:`quantize_qat` reports by how much.
- No pickle / TorchScript: :func:`quantized_state` and :func:`rebuild_quantized`.
"""

from .fx import quantize_ptq, quantize_qat
from .recipe import BACKENDS, MODES, QuantBackend, QuantMode, QuantRecipe
from .state import (
    FORMAT_VERSION,
    REQUIRED_METADATA,
    flat_state,
    model_size_mb,
    quantized_state,
    rebuild_quantized,
)
from .victim import QuantizedVictim, quantized_engine

__all__ = [
    "BACKENDS",
    "FORMAT_VERSION",
    "MODES",
    "REQUIRED_METADATA",
    "QuantBackend",
    "QuantMode",
    "QuantRecipe",
    "QuantizedVictim",
    "flat_state",
    "model_size_mb",
    "quantize_ptq",
    "quantize_qat",
    "quantized_engine",
    "quantized_state",
    "rebuild_quantized",
]
