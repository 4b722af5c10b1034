"""How one int8 victim is made: :class:`QuantRecipe` (config ``quantization`` section).

The modes and backends of Khaled et al. 2023 (ICMLA), ``df/quantize.py``: docs/methods.md
(Quantization).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

QuantMode = Literal["ptq", "qat"]
QuantBackend = Literal["x86", "qnnpack"]

MODES: tuple[str, ...] = ("ptq", "qat")
#: ``x86`` = server CPUs (FBGEMM/oneDNN kernels), ``qnnpack`` = edge / ARM mobile CPUs.
BACKENDS: tuple[str, ...] = ("x86", "qnnpack")

# QAT optimiser: the original fine-tunes with the victim's recipe (SGD, Nesterov momentum, weight decay 5e-4,
# cosine schedule); lr, epochs and batch size come from the QuantRecipe.
QAT_MOMENTUM = 0.9
QAT_WEIGHT_DECAY = 5e-4


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class QuantRecipe:
    """How one int8 victim is made (config ``quantization`` section).

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
        """The recipe as safetensors metadata (string values), for the victim store."""
        return {"quant_recipe": json.dumps(asdict(self), sort_keys=True)}
