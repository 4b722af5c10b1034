"""MAD — maximising angular deviation, Orekondy et al., "Prediction Poisoning: Towards Defenses
Against DNN Model Stealing Attacks" (ICLR 2020), in two variants: the simplified MAD of the paper
code of Khaled et al. (ICMLA 2023) and Mazeika et al. (ICML 2022), and Orekondy et al.'s own
(docs/methods.md, docs/deviations.md).

MAD perturbs the victim posterior y so that the gradient an adversary would compute on it,
``v = G^T y``, turns away from the gradient on the perturbed answer. G stacks the per-class
gradients of a surrogate's log-likelihood w.r.t. the surrogate's **final linear layer** only
(an untrained surrogate in the paper, ``surrogate_epochs = 0``).

Closed form (why nothing per class is back-propagated). With penultimate features h ∈ R^D,
logits z = W h + b and p = softmax(z), ``∂ log p_k / ∂W = (e_k − p) h^T`` and
``∂ log p_k / ∂b = e_k − p``, so row k of G is ``u_k = (e_k − p) ⊗ h̃`` with ``h̃ = [h, 1]``
(``h̃ = h`` when only the weight is used, as the original MAD did). Because ``Σ_k y_k = 1``,
``v = G^T y = (y − p) ⊗ h̃`` and every inner product factorises through the Gram form

    ⟨a ⊗ h̃, b ⊗ h̃⟩ = ⟨a, b⟩ · ‖h̃‖²,
    ⟨u_k, v⟩ = ((y − p)_k − ⟨p, y − p⟩) ‖h̃‖²,   ‖u_k‖² = (1 − 2 p_k + ‖p‖²) ‖h̃‖²,
    ‖v‖² = ‖y − p‖² ‖h̃‖²,

which is O(K) per example: no K × (D + 1) Jacobian, no backward pass, one surrogate forward
for the batch (the features h come from a forward hook on the last ``nn.Linear``). ``‖h̃‖²``
cancels in every cosine, so the choice of target depends on the surrogate only through p.

Variants (config key ``variant``):

``simplified`` (default; the paper code's ``method_orekondy``): ``k* = argmax_k 1 − cos(u_k, v)``
(ties → the *last* k, as the original's ``>=`` scan), then the line search
``ỹ = (1 − α) y + α e_{k*}`` with ``α = ε / ‖y − e_{k*}‖₁`` **clamped to [0, 1]**. The original did
not clamp α (docs/deviations.md): for ``ε > 2(1 − y_{k*})`` its answers left the simplex; clamping keeps them
on it and changes nothing else. Gradients w.r.t. the fc weight and bias, as that code.

``original`` (``prediction-poisoning/defenses/victim/bb_mad.py`` with the README setting
``oracle=extreme, objmax=True``): the oracle maximises ``‖û_k − v̂‖²`` over one-hot targets, with
û, v̂ the unit gradient directions. For unit vectors ``‖û − v̂‖² = 2 − 2 cos(u, v)``, so it is the
same cosine criterion (ties → the *first* k: that code scans with a strict ``>``). Gradients
w.r.t. the fc weight only (``params[-2]``), as that code. (bb_mad.py's default ``objmax=False``
scores the unnormalised ``‖G^T(e_k − y)‖² = ‖e_k − y‖² ‖h‖²`` instead, i.e. picks ``argmin_k y_k``;
not implemented.) Then, by ``optim``:

- ``projections`` (default, the "projection onto the L1 ball ∩ simplex" formulation): alternating
  Euclidean projections of ``ỹ = e_{k*}`` onto the L1 ball of radius ε around y and the simplex
  (Duchi et al. 2008), at most ``max_iters`` rounds (100 by default), a row stopping once
  ``‖ỹ − y‖₁ ≤ ε + tol`` (tol 1e-4 by default, the original's test). All rows and all ε run together;
  stopped rows are frozen. The final iterate is on the simplex but may exceed ε by up to tol
  (or more without convergence), so it is finished with a line search towards y,
  ``ỹ ← y + min(1, ε / ‖ỹ − y‖₁)(ỹ − y)``, a convex combination of two simplex points that
  satisfies both constraints. (In bb_mad.py the projections path cannot run: ``calc_delta``
  passes ``ydist`` and ``epsilon`` in swapped order.)
- ``linesearch`` (bb_mad.py's default): ``α = clamp(ε / (‖y − e_{k*}‖₁ + 1e-7), 0, 1)``.

ε = 0 returns the input exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .base import Defense
from .options import L1_BUDGET_MAX, Option, declare, defaults, resolve
from .registry import DefenseMethod, register
from .simplex import l1_distance, project_l1_ball, project_simplex

VARIANTS = ("simplified", "original")
OPTIMS = ("projections", "linesearch")
OPTIONS = declare(
    Option(
        "variant", str, "simplified", choices=VARIANTS, doc="the paper code's simplified MAD or the original"
    ),
    Option(
        "optim", str, "projections", choices=OPTIMS, doc="original variant: how the target enters the ε-ball"
    ),
    Option("max_iters", int, 100, minimum=1, doc="original variant, projections: at most this many rounds"),
    Option("tol", float, 1e-4, minimum=0, doc="original variant, projections: stop once ‖ỹ − y‖₁ ≤ ε + tol"),
    Option(
        "surrogate_epochs",
        int,
        0,
        minimum=0,
        doc="the defender surrogate: distilled on the transfer set, stopped after this many epochs (0 = untrained)",
    ),
)
DEFAULTS = defaults(OPTIONS)


def last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` in ``model.modules()`` (the classifier head of every zoo model)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"MAD needs a surrogate with a final nn.Linear layer; {type(model).__name__} has none"
        )
    return linears[-1]


def features_and_logits(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """Penultimate features ``h`` ``[B, D]`` (input of the last Linear) and logits, one forward pass."""
    layer = last_linear(model)
    seen: dict[str, Tensor] = {}

    def hook(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        seen["h"], seen["z"] = args[0], output

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    if (
        "h" not in seen
        or seen["h"].ndim != 2
        or seen["z"].shape != logits.shape
        or not torch.equal(seen["z"], logits)
    ):
        raise ValueError(
            "MAD's closed form needs a surrogate whose output logits are its last Linear(h) on [B, D] features"
        )
    return seen["h"], logits


def gram_cosines(p: Tensor, y: Tensor, feature_sq_norm: Tensor) -> Tensor:
    """``cos(u_k, v)`` ``[B, K]`` for ``u_k = (e_k − p) ⊗ h̃``, ``v = (y − p) ⊗ h̃`` (Gram form).

    ``feature_sq_norm`` is ``‖h̃‖²`` ``[B]``. A zero gradient (``‖h̃‖ = 0`` or ``y = p``) gives cosine 0,
    as ``torch.nn.functional.cosine_similarity`` with its small-norm guard.
    """
    s = feature_sq_norm.unsqueeze(-1)
    r = y - p  # [B, K]
    inner = (r - (p * r).sum(-1, keepdim=True)) * s  # ⟨e_k − p, y − p⟩ ‖h̃‖²
    u_sq = (1 - 2 * p + (p * p).sum(-1, keepdim=True)).clamp_min(0) * s
    v_sq = (r * r).sum(-1, keepdim=True) * s
    tiny = torch.finfo(p.dtype).tiny
    return inner / (u_sq * v_sq).sqrt().clamp_min(tiny)


def best_one_hot(cosines: Tensor, ties: str) -> Tensor:
    """``argmax_k (1 − cos_k)`` per row; ``ties`` = ``"last"`` or ``"first"`` index among equal values."""
    objective = 1 - cosines
    if ties == "first":
        return objective.argmax(-1)
    k = objective.shape[-1]
    return k - 1 - objective.flip(-1).argmax(-1)


def alternating_projections(
    y: Tensor,
    target: Tensor,
    eps: Tensor,
    max_iters: int = DEFAULTS["max_iters"],
    tol: float = DEFAULTS["tol"],
) -> Tensor:
    """Alternating L1-ball / simplex projections of ``target`` for every ε, batched ``[E, B, K]``.

    Each round: ``ỹ ← Π_Δ(Π_{‖·−y‖₁≤ε}(ỹ))``; a row stops (and is frozen) once
    ``‖ỹ − y‖₁ ≤ ε + tol``. Finished with the line search toward y that enforces ``‖ỹ − y‖₁ ≤ ε``.
    """
    n_eps = len(eps)
    y_e = y.unsqueeze(0).expand(n_eps, -1, -1)
    radius = eps.view(-1, 1).expand(n_eps, y.shape[0])
    current = target.unsqueeze(0).expand(n_eps, -1, -1).clone()
    active = torch.ones(radius.shape, dtype=torch.bool, device=y.device)
    for _ in range(max_iters):
        step = project_simplex(project_l1_ball(current, y_e, radius))
        current = torch.where(active.unsqueeze(-1), step, current)
        active = active & (l1_distance(current, y_e) - radius > tol)
        if not bool(active.any()):
            break
    return shrink_to_ball(y_e, current, radius)


def shrink_to_ball(y: Tensor, ytilde: Tensor, radius: Tensor) -> Tensor:
    """``y + min(1, r / ‖ỹ − y‖₁)(ỹ − y)``: the point of the segment [y, ỹ] inside the L1 ball."""
    dist = l1_distance(ytilde, y)
    scale = torch.where(
        dist > radius, radius / dist.clamp_min(torch.finfo(y.dtype).tiny), torch.ones_like(dist)
    )
    return y + scale.unsqueeze(-1) * (ytilde - y)


class MAD(Defense):
    """MAD with an fc-layer surrogate Jacobian in closed form (Orekondy et al., ICLR 2020)."""

    method = "MAD"
    uses_input = True

    def __init__(
        self,
        surrogate: nn.Module,
        variant: str = DEFAULTS["variant"],
        optim: str = DEFAULTS["optim"],
        max_iters: int = DEFAULTS["max_iters"],
        tol: float = DEFAULTS["tol"],
    ) -> None:
        values = {"variant": variant, "optim": optim, "max_iters": max_iters, "tol": tol}
        checked = resolve(OPTIONS, values, key=self.method)
        last_linear(surrogate)
        self.surrogate = surrogate.eval()
        self.variant, self.optim = checked["variant"], checked["optim"]
        self.max_iters, self.tol = checked["max_iters"], checked["tol"]

    def cosines(self, x: Tensor, probs: Tensor) -> Tensor:
        """``cos(u_k, v)`` ``[B, K]`` between the fc-gradient of each one-hot answer and of y."""
        h, logits = features_and_logits(self.surrogate.eval(), x)
        p = torch.softmax(logits.to(probs.dtype), dim=-1)
        h = h.to(probs.dtype)
        sq_norm = (h * h).sum(-1)
        if self.variant == "simplified":  # weight and bias: h̃ = [h, 1]
            sq_norm = sq_norm + 1
        return gram_cosines(p, probs, sq_norm)

    def target_class(self, x: Tensor, probs: Tensor) -> Tensor:
        """``k*`` ``[B]``, the one-hot target of the oracle 'extreme'."""
        return best_one_hot(self.cosines(x, probs), ties="last" if self.variant == "simplified" else "first")

    def auxiliary_models(self) -> dict[str, nn.Module]:
        return {"surrogate": self.surrogate}

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        if x is None:
            raise ValueError("MAD needs the query images x (it uses the surrogate's gradients)")
        k_star = self.target_class(x, probs)
        one_hot = torch.nn.functional.one_hot(k_star, probs.shape[-1]).to(probs.dtype)  # [B, K]
        if self.variant == "original" and self.optim == "projections":
            out = alternating_projections(probs, one_hot, params, self.max_iters, self.tol)
        else:
            dist = l1_distance(probs, one_hot)  # 2 (1 − y_{k*})
            if self.variant == "simplified":
                ratio = params.view(-1, 1) / dist.clamp_min(torch.finfo(probs.dtype).tiny)
                alpha = torch.where(dist > 0, ratio.clamp(0, 1), torch.zeros_like(ratio))
            else:
                alpha = (params.view(-1, 1) / (dist + 1e-7)).clamp(0, 1)
            alpha = alpha.unsqueeze(-1)  # [E, B, 1]
            out = (1 - alpha) * probs.unsqueeze(0) + alpha * one_hot.unsqueeze(0)
        return torch.where(params.view(-1, 1, 1) == 0, probs.unsqueeze(0), out)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"method": self.method, "variant": self.variant}
        if self.variant == "original":
            info["optim"] = self.optim
            if self.optim == "projections":
                info.update(max_iters=self.max_iters, tol=self.tol)
        return info


def _surrogate(options: Mapping[str, Any]) -> tuple[str, ...]:
    return (f"surrogate_e{options['surrogate_epochs']}",)


def _build(options: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return MAD(
        aux[_surrogate(options)[0]],
        variant=options["variant"],
        optim=options["optim"],
        max_iters=options["max_iters"],
        tol=options["tol"],
    )


register(DefenseMethod("MAD", _build, options=OPTIONS, aux_models=_surrogate, param_max=L1_BUDGET_MAX))
