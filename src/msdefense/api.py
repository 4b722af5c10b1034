"""The library entry points: a model behind a defense in one call, and a dataset as tensors
(docs/api.md shows both; tests/test_api.py runs its examples)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .defenses import DEFENSES, OptionError, build_defense, check_defense_config
from .oracle import Oracle


class DefendedModel:
    """``model`` behind one defense at one operating point, with an optional query budget.

    Call it on a batch of images ``[B, C, H, W]`` in the model's input format, as a torch tensor
    or a numpy array: it returns the defended probabilities ``[B, K]`` of the same kind (numpy in,
    numpy out). Every image counts as one query (:attr:`queries_used`).
    """

    def __init__(self, oracle: Oracle, *, device: torch.device) -> None:
        self.oracle, self.device = oracle, device

    @property
    def method(self) -> str:
        return self.oracle.defense.method

    @property
    def param(self) -> float:
        return self.oracle.params[0]

    @property
    def queries_used(self) -> int:
        return self.oracle.queries_used

    @property
    def queries_left(self) -> int | None:
        return self.oracle.queries_left

    def __call__(self, x: Tensor | np.ndarray) -> Tensor | np.ndarray:
        numpy = isinstance(x, np.ndarray)
        if not numpy and not isinstance(x, Tensor):
            raise TypeError(f"query with a torch tensor or a numpy array of images, got {type(x).__name__}")
        t = torch.from_numpy(np.ascontiguousarray(x)) if numpy else x
        if t.ndim != 4:
            raise ValueError(
                f"query with a batch of images [B, C, H, W], got shape {tuple(t.shape)}"
                + ("; add the batch axis (x[None]) for one image" if t.ndim == 3 else "")
            )
        if not t.is_floating_point():
            raise TypeError(f"query with floating-point images in the model's input format, got {t.dtype}")
        answers = self.oracle(t.to(self.device, torch.float32))
        return answers.cpu().numpy() if numpy else answers

    def __repr__(self) -> str:
        return f"DefendedModel({self.method}, param={self.param:g}, queries_used={self.queries_used})"


def defend(
    model: nn.Module,
    method: str = "None",
    param: float | None = None,
    *,
    budget: int | None = None,
    aux: Mapping[str, nn.Module] | None = None,
    dataset: str | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    **options: Any,
) -> DefendedModel:
    """``model`` behind the defense ``method`` (a name of :data:`msdefense.defenses.DEFENSES`) at
    operating point ``param`` (β for DCP and ReverseSigmoid, ε for the ε-budget methods, k for
    TopK, decimals for Rounding; none for ``"None"``), with the method's ``options`` (e.g.
    ``gamma=0.2``), checked as a config entry is (an unknown or out-of-range option raises
    ``ValueError`` naming it). ``aux``: the auxiliary models the method needs, by the names
    :func:`msdefense.defenses.required_aux_models` gives (MAD's and GRAD's surrogate, AM's
    misinformation model). ``dataset``: only where an option depends on it (``gamma_by_dataset``).
    ``budget``: refuse queries past this many images. ``device``: the model's (default: where its
    parameters are)."""
    if method not in DEFENSES:
        raise ValueError(f"unknown defense method {method!r}; known: {', '.join(sorted(DEFENSES))}")
    if param is None:
        if method != "None":
            raise ValueError(
                f"defend({method!r}) needs param, the operating point (e.g. {DEFENSES[method].example_sweep()[1]:g})"
            )
        param = 0.0
    try:
        entry = check_defense_config(method, {"method": method, "params": [param], **options})
    except OptionError as exc:
        raise ValueError(f"defend({method!r}): {exc}") from None
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model = model.to(device).eval()
    defense = build_defense(entry, dataset, aux=dict(aux or {}), seed=seed)
    return DefendedModel(Oracle(model, defense, [param], budget=budget), device=device)


def dataset_tensors(
    name: str, split: str = "test", *, root: str | Path = "resources", download: bool = False
) -> tuple[Tensor, Tensor]:
    """A registered dataset's ``split`` (``train`` or ``test``) as ``(images [N, C, H, W], labels
    [N])`` in the victims' input format (normalised, the workflow's test transform). The digits
    ship with scikit-learn; the others are read from ``root`` (``download``: fetch them there)."""
    from .data import get_dataset_spec
    from .training import dataset_tensors as stack

    spec = get_dataset_spec(name)
    if split not in spec.splits:
        raise ValueError(f"dataset {name!r} has the splits {list(spec.splits)}, not {split!r}")
    return stack(spec.loader(Path(root), split, False, download))
