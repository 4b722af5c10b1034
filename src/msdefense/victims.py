"""The victim store: one file format and one metadata schema for every model the workflow keeps.

Three kinds share it:

- ``fp32``: a classifier from the model registry (victims, clones, students, surrogates,
  misinformation models, MISLEADER members): its state dict;
- ``int8``: a PTQ / QAT copy of an fp32 victim (:mod:`msdefense.quantization`): int8 values,
  scales and zero points as plain tensors, plus the layout that rebuilds the graph;
- ``ensemble``: a MISLEADER soft-voting ensemble (:class:`msdefense.misleader.Ensemble`): every
  member's state dict under ``member<i>.``.

Every file is safetensors (no pickle) with the string metadata of :class:`VictimInfo`, written
with sorted keys so that identical weights give identical bytes (:func:`msdefense.io.save_tensors`).
:func:`rebuild_victim` rebuilds any kind from a file's tensors and metadata; the checked
readers of a stored file (:func:`read_victim`, :func:`read_victim_info`, :func:`read_classifier`)
refuse a bad file naming it and the rule that writes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from . import __version__
from .artifacts import ArtifactError, PathLike, error_detail, writers
from .io import save_tensors
from .models import build_model
from .provenance import KEY, mismatch
from .training import prepare_model

KINDS = ("fp32", "int8", "ensemble")
#: The metadata keys :class:`VictimInfo` owns; any other key is kind-specific (``extra``).
INFO_KEYS = ("kind", "arch", "dataset", "num_classes", "in_channels", "source", "member_archs")


@dataclass(frozen=True, kw_only=True)
class VictimInfo:
    """What a stored model is: its kind, architecture and data shape, and where it came from.

    ``arch`` is the architecture of an fp32 model, the fp32 source's for an int8 victim, and the
    architecture the defenses' auxiliary models use for an ensemble. ``source`` is the fp32 victim
    an int8 victim was quantized from, or the teacher of an ensemble. ``extra`` holds kind-specific
    strings (the int8 layout and recipe).
    """

    kind: str
    arch: str
    dataset: str
    num_classes: int
    in_channels: int
    source: str = ""
    member_archs: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"victim kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "ensemble") != bool(self.member_archs):
            raise ValueError("member_archs is given for an ensemble, and only for one")
        clash = sorted(set(self.extra) & set(INFO_KEYS))
        if clash:
            raise ValueError(f"extra metadata may not redefine {clash}")

    @classmethod
    def of_dataset(cls, *, kind: str, arch: str, dataset: str, **rest: Any) -> VictimInfo:
        """The info of a model trained on the registered dataset ``dataset``."""
        from .data import get_dataset_spec

        spec = get_dataset_spec(dataset)
        return cls(
            kind=kind,
            arch=arch,
            dataset=dataset,
            num_classes=spec.num_classes,
            in_channels=spec.in_channels,
            **rest,
        )

    def to_metadata(self) -> dict[str, str]:
        meta = {
            **self.extra,
            "kind": self.kind,
            "arch": self.arch,
            "dataset": self.dataset,
            "num_classes": str(self.num_classes),
            "in_channels": str(self.in_channels),
            "msdefense_version": __version__,
        }
        if self.source:
            meta["source"] = self.source
        if self.member_archs:
            meta["member_archs"] = json.dumps(list(self.member_archs))
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], path: str | os.PathLike = "<memory>") -> VictimInfo:
        for key in ("kind", "arch", "dataset", "num_classes", "in_channels"):
            if key not in meta:
                raise ValueError(
                    f"{path}: the weights lack the metadata key {key!r}; re-create them with this "
                    "package's victim store (msdefense.victims.save_victim)"
                )
        rest = {k: v for k, v in meta.items() if k not in INFO_KEYS and k not in ("msdefense_version", KEY)}
        return cls(
            kind=meta["kind"],
            arch=meta["arch"],
            dataset=meta["dataset"],
            num_classes=int(meta["num_classes"]),
            in_channels=int(meta["in_channels"]),
            source=meta.get("source", ""),
            member_archs=tuple(json.loads(meta.get("member_archs", "[]"))),
            extra=rest,
        )


def _state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_victim(model: nn.Module, path: str | os.PathLike, info: VictimInfo) -> None:
    """Write ``model`` of kind ``info.kind`` with ``info`` as metadata, atomically, reproducibly."""
    extra: dict[str, str] = {}
    if info.kind == "int8":
        from .quantization import quantized_state

        tensors, extra = quantized_state(model)  # type: ignore[arg-type]
    elif info.kind == "ensemble":
        members = list(model.members)  # type: ignore[union-attr]
        if len(members) != len(info.member_archs):
            raise ValueError(f"{len(info.member_archs)} member archs for {len(members)} members")
        tensors = {f"member{i}.{k}": v for i, m in enumerate(members) for k, v in _state(m).items()}
    else:
        tensors = _state(model)
    save_tensors(tensors, path, {**info.to_metadata(), **extra})


def rebuild_victim(info: VictimInfo, tensors: Mapping[str, Tensor], path: str | os.PathLike) -> nn.Module:
    """The model of kind ``info.kind`` from a file's tensors, on the CPU; raw torch errors on a mismatch.

    An ensemble's ``forward`` returns the log of the mean member softmax (the oracle's softmax then
    gives the soft vote); an int8 victim runs on the CPU whatever device it is asked for and returns
    its logits on the input's device.
    """
    if info.kind == "int8":
        from .quantization import rebuild_quantized

        return rebuild_quantized(info.to_metadata(), tensors, path)
    if info.kind == "ensemble":
        from .misleader import Ensemble

        members, used = [], 0
        for i, arch in enumerate(info.member_archs):
            prefix = f"member{i}."
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            member = build_model(arch, info.num_classes, info.in_channels)
            member.load_state_dict(state)
            members.append(member)
            used += len(state)
        if used != len(tensors):
            raise ValueError(f"{len(tensors) - used} tensors belong to none of the {len(members)} members")
        return Ensemble(members)
    model = build_model(info.arch, info.num_classes, info.in_channels)
    model.load_state_dict(tensors)
    return model


def save_classifier(model: nn.Module, path: str | os.PathLike, *, arch: str, dataset: str) -> None:
    """Store an fp32 classifier of the registry trained on ``dataset``."""
    save_victim(model, path, VictimInfo.of_dataset(kind="fp32", arch=arch, dataset=dataset))


# ---------------------------------------------------------------------------------------------
# the checked readers

#: The metadata keys every model of the victim store carries (msdefense.victims.VictimInfo).
VICTIM_METADATA = ("kind", "arch", "dataset", "num_classes", "in_channels")


def _open(path: PathLike, rules: Sequence[str]) -> Any:
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(
            path, f"is not a readable safetensors file ({error_detail(exc, path)})", rules
        ) from exc


def _expected_kind(kinds: Sequence[str]) -> str | None:
    return kinds[0] if len(kinds) == 1 else None


def _victim_info(
    fh: Any, path: PathLike, pattern: str | None, kinds: Sequence[str], rules: Sequence[str]
) -> VictimInfo:
    meta = fh.metadata() or {}
    missing = [k for k in VICTIM_METADATA if k not in meta]
    if missing:
        more = f" (and {missing[1:]})" if len(missing) > 1 else ""
        raise ArtifactError(
            path,
            f"lacks the metadata key {missing[0]!r}{more} that the victim store "
            "(msdefense.victims.save_victim) writes",
            rules,
        )
    try:
        info = VictimInfo.from_metadata(meta, path)
    except ValueError as exc:
        raise ArtifactError(path, f"has invalid metadata ({error_detail(exc, path)})", rules) from exc
    rules = writers(path, pattern, info.kind)
    if info.kind == "int8":
        from .quantization import REQUIRED_METADATA

        lacking = [k for k in REQUIRED_METADATA if k not in meta]
        if lacking:
            raise ArtifactError(path, f"is an int8 victim without the metadata keys {lacking}", rules)
    if info.kind not in kinds:
        raise ArtifactError(path, f"holds a {info.kind} model where {' or '.join(kinds)} is expected", rules)
    wrong = mismatch(meta.get(KEY), path)
    if wrong:
        raise ArtifactError(path, wrong, rules)
    return info


def _check_dtypes(
    model: nn.Module, tensors: Mapping[str, Tensor], info: VictimInfo, path: PathLike, rules: Sequence[str]
) -> None:
    """Refuse tensors whose dtype differs from the model's (``load_state_dict`` would cast them)."""
    if info.kind == "int8":
        return  # the quantized layout checks its own tensors (msdefense.quantization.state)
    own = {
        (f"member{i}.{k}" if info.kind == "ensemble" else k): v.dtype
        for i, m in enumerate(model.members if info.kind == "ensemble" else [model])  # type: ignore[union-attr]
        for k, v in m.state_dict().items()
    }
    wrong = [f"{k} ({t.dtype})" for k, t in tensors.items() if k in own and t.dtype != own[k]]
    if wrong:
        raise ArtifactError(
            path, f"holds {len(wrong)} tensors of another dtype than its model's (first: {wrong[0]})", rules
        )


def read_victim_info(
    path: PathLike, pattern: str | None = None, *, kinds: Sequence[str] = KINDS
) -> VictimInfo:
    """The checked :class:`~msdefense.victims.VictimInfo` of a stored model (reads the header only).

    ``pattern``: the :mod:`~msdefense.layout` pattern of ``path`` (what names its rule); by default
    the one the path matches.
    """
    rules = writers(path, pattern, _expected_kind(kinds))
    with _open(path, rules) as fh:
        return _victim_info(fh, path, pattern, kinds, rules)


def read_victim(
    path: PathLike,
    device: torch.device | str = "cpu",
    *,
    kinds: Sequence[str] = KINDS,
    pattern: str | None = None,
) -> tuple[nn.Module, VictimInfo]:
    """A stored model (eval mode, on ``device``; an int8 victim stays on the CPU) and its info,
    checked: the file opens, its metadata is complete, its kind is one of ``kinds``, its weights
    are finite and load into the model the metadata describes."""
    rules = writers(path, pattern, _expected_kind(kinds))
    with _open(path, rules) as fh:
        info = _victim_info(fh, path, pattern, kinds, rules)
        rules = writers(path, pattern, info.kind)
        try:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
        except SafetensorError as exc:
            raise ArtifactError(path, f"has unreadable tensors ({error_detail(exc, path)})", rules) from exc
    if not tensors:
        raise ArtifactError(path, "holds no tensors", rules)
    broken = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if broken:
        raise ArtifactError(
            path, f"holds NaN or infinite weights in {len(broken)} tensors (first: {broken[0]!r})", rules
        )
    try:
        model = rebuild_victim(info, tensors, path)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        what = (
            f"{info.kind} {info.arch}"
            if info.kind != "ensemble"
            else f"ensemble of {list(info.member_archs)}"
        )
        raise ArtifactError(
            path, f"does not load into its {what} model ({error_detail(exc, path)})", rules
        ) from exc
    _check_dtypes(model, tensors, info, path, rules)
    return (model if info.kind == "int8" else prepare_model(model, device).eval()), info


def read_classifier(
    path: PathLike, device: torch.device | str = "cpu", pattern: str | None = None
) -> nn.Module:
    """An fp32 classifier of the store (:func:`read_victim` with ``kinds=("fp32",)``)."""
    return read_victim(path, device, kinds=("fp32",), pattern=pattern)[0]
