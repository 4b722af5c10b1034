"""The requests of stages about one victim: its config entry, the model it starts from, and its
data (the victim's splits and the attacker's transfer sets, drawn with the config's split seed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .context import StageRequest


@dataclass(frozen=True, kw_only=True)
class VictimRequest(StageRequest):
    """A stage about one victim: its name (the ``victim`` wildcard) and config entry, and the
    ImageNet weights a model it trains starts from (``pretrained: true``; none otherwise)."""

    victim: str
    victim_cfg: Mapping[str, Any]
    in_weights: Sequence[str] | str = ()

    @property
    def weights(self) -> str | None:
        """The one pretrained-weights file of the request, or None."""
        given = [self.in_weights] if isinstance(self.in_weights, str) else list(self.in_weights)
        if len(given) > 1:
            raise ValueError(f"{type(self).__name__} got several weights files: {given}")
        return given[0] if given else None

    def fresh_model(self, arch: str, spec: Any) -> torch.nn.Module:
        """A new ``arch`` classifier for ``spec``'s classes and channels, its backbone loaded from
        :attr:`weights` when there is one."""
        from ..models import build_model

        model = build_model(arch, spec.num_classes, spec.in_channels)
        if self.weights is not None:
            from ..pretrained import load_backbone

            load_backbone(model, self.weights, arch=arch)
        return model


@dataclass(frozen=True, kw_only=True)
class ModelOutputs:
    """The outputs of a stage that trains a model: its weights and its metrics record."""

    out_model: str
    out_metrics: str


@dataclass(frozen=True)
class VictimData:
    """The splits of a victim's dataset under the config's ``data`` section: the victim's training
    part, the validation part, the test split and transfer sets. They are drawn with
    ``data.split_seed``, not the replicate seed, so every replicate sees the same data."""

    dataset: str
    data: Mapping[str, Any]

    @property
    def seed(self) -> int:
        return int(self.data["split_seed"])

    @property
    def spec(self) -> Any:
        from ..data import get_dataset_spec

        return get_dataset_spec(self.dataset)

    @property
    def root(self) -> Path:
        return Path(self.data["root"])

    def train(self, *, augment: bool) -> Dataset:
        """The victim's share of the training split (without the attacker's and validation parts)."""
        from ..data import victim_training_set

        return victim_training_set(
            self.spec,
            self.root,
            self.data["attacker_holdout"],
            self.seed,
            augment=augment,
            val_fraction=self.data["validation_fraction"],
        )

    def val(self) -> Dataset:
        """The validation part used for every model selection (never the test split)."""
        from ..data import validation_set

        return validation_set(
            self.spec, self.root, self.data["attacker_holdout"], self.seed, self.data["validation_fraction"]
        )

    def split(self, name: str) -> Dataset:
        """A split of the dataset as stored (``val``, ``test``), un-augmented."""
        return self.spec.loader(self.root, name, False, False)

    def test(self) -> Dataset:
        return self.split("test")

    def transfer(self, transfer_cfg: Mapping[str, Any], *, augment: bool) -> Dataset:
        """The attacker's transfer set ``transfer_cfg`` for this victim."""
        from ..data import load_transfer_set

        return load_transfer_set(
            transfer_cfg, self.dataset, self.root, self.data["attacker_holdout"], self.seed, augment=augment
        )

    def image_shape(self) -> tuple[int, int, int]:
        spec = self.spec
        return spec.in_channels, spec.image_size, spec.image_size
