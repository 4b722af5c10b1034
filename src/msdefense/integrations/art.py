"""Adapters to the adversarial-robustness-toolbox (ART; docs/api.md, "ART"): a package oracle as an
ART black-box classifier, which ART's attacks query and which counts their queries, and any package
defense as an ART postprocessor, to put behind any ART classifier.

ART is an optional extra: ``pip install msdefense[art]``. ``import msdefense`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

try:
    from art.defences.postprocessor import Postprocessor
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        "msdefense.integrations.art needs the adversarial-robustness-toolbox: pip install msdefense[art]"
    ) from exc

from ..api import DefendedModel
from ..defenses import Defense, OptionError, build_defense, check_defense_config
from ..defenses.base import output_classes
from ..oracle import Oracle

__all__ = ["DefensePostprocessor", "art_classifier"]


def art_classifier(
    oracle: DefendedModel | Oracle,
    *,
    input_shape: tuple[int, ...],
    nb_classes: int | None = None,
    clip_values: tuple[float, float] | None = None,
    **art_options: Any,
) -> BlackBoxClassifierNeuralNetwork:
    """``oracle`` as an ART black-box classifier: numpy images ``[B, *input_shape]`` in, the
    defended probabilities ``[B, nb_classes]`` out.

    ``oracle``: a :func:`msdefense.defend` result, or an :class:`~msdefense.Oracle` holding one
    operating point. Every image ART sends is one query of the oracle (its ``queries_used``; its
    budget refuses the batch that would pass it, ``QueryBudgetExceeded``). ``nb_classes``: by
    default the victim's last linear layer's width. ``clip_values``: the images' ``(min, max)``,
    for the attacks that need it. ``art_options``: passed on to ART's
    ``BlackBoxClassifierNeuralNetwork`` (``preprocessing_defences``, ``channels_first``, ...).
    """
    if isinstance(oracle, Oracle):
        if len(oracle.params) != 1:
            raise ValueError(
                f"an ART classifier answers at one operating point; this oracle holds the sweep {oracle.params}"
            )
        first = next(oracle.victim.parameters(), None)
        oracle = DefendedModel(oracle, device=first.device if first is not None else torch.device("cpu"))
    if not isinstance(oracle, DefendedModel):
        raise TypeError(
            f"art_classifier wraps a msdefense.defend(...) result or a msdefense.Oracle, got {type(oracle).__name__}"
        )
    if nb_classes is None:
        nb_classes = output_classes(oracle.oracle.victim)
        if nb_classes is None:
            raise ValueError("the victim has no linear layer to read its class count from: pass nb_classes")
    return BlackBoxClassifierNeuralNetwork(
        oracle,  # numpy in, numpy out; it counts the queries
        tuple(input_shape),
        nb_classes,
        clip_values=clip_values,
        **art_options,
    )


class DefensePostprocessor(Postprocessor):
    """A package defense as an ART postprocessor, at one operating point ``param``.

    Attached to any ART classifier (``postprocessing_defences=``), it perturbs the classifier's
    predicted probabilities as the defense does behind an oracle. ``defense``: a built
    :class:`~msdefense.defenses.Defense` (:func:`msdefense.defenses.build_defense`), or a method name
    of :data:`msdefense.DEFENSES` with its ``options`` (and ``aux``, ``dataset``, ``seed``), checked
    as :func:`msdefense.defend` checks them. ``logits``: the classifier predicts logits (a
    ``PyTorchClassifier`` of a model that ends in a linear layer): their float32 softmax is
    perturbed, as an oracle does. A postprocessor sees only the predictions, so the methods that read
    the query images (MAD, GRAD, AdaptiveMisinformation) are refused: put the model behind them with
    :func:`msdefense.defend` and wrap that with :func:`art_classifier`. ``apply_fit`` and
    ``apply_predict`` are ART's switches (by default, at prediction time only).
    """

    params = ["param"]

    def __init__(
        self,
        defense: Defense | str,
        param: float,
        *,
        logits: bool = False,
        aux: Mapping[str, nn.Module] | None = None,
        dataset: str | None = None,
        seed: int = 0,
        apply_fit: bool = False,
        apply_predict: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(is_fitted=True, apply_fit=apply_fit, apply_predict=apply_predict)
        if isinstance(defense, str):
            try:
                entry = check_defense_config(defense, {"method": defense, "params": [param], **options})
            except OptionError as exc:
                raise ValueError(f"DefensePostprocessor({defense!r}): {exc}") from None
            defense = build_defense(entry, dataset, aux=dict(aux or {}), seed=seed)
        elif not isinstance(defense, Defense):
            raise TypeError(f"expected a msdefense Defense or a method name, got {type(defense).__name__}")
        elif options or aux or dataset is not None:
            raise TypeError("options, aux and dataset go with a method name; this defense is already built")
        if defense.uses_input:
            raise ValueError(
                f"{defense.method} reads the query images, which an ART postprocessor never sees: put the "
                "model behind it with msdefense.defend(...) and wrap that with art_classifier(...)"
            )
        self.defense, self.param, self.logits = defense, param, bool(logits)
        self._check_params()

    def __call__(self, preds: np.ndarray) -> np.ndarray:
        """The defended probabilities ``[B, K]`` of ``preds`` (probabilities, or logits with ``logits``)."""
        probs = torch.from_numpy(np.ascontiguousarray(preds))
        if self.logits:
            probs = torch.softmax(probs.float(), dim=-1)
        with torch.no_grad():
            answers = self.defense(None, probs, self.param)
        return answers.cpu().numpy().astype(np.float32 if self.logits else preds.dtype, copy=False)

    def _check_params(self) -> None:
        param = getattr(self, "param", 0.0)
        if isinstance(param, bool) or not isinstance(param, numbers.Real) or not 0 <= param < math.inf:
            raise ValueError(f"param (the operating point) must be a finite number >= 0, got {param!r}")
        self.param = float(param)

    def __repr__(self) -> str:
        return f"DefensePostprocessor({self.defense.method}, param={self.param:g}, logits={self.logits})"
