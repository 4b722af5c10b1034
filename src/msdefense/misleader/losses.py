"""The two objectives of MISLEADER training: the inner attacker's and the member's (defense's).

Cheng et al. 2025 (MISLEADER, arXiv 2506.02362), as implemented in ``Defense/train_defense.py``;
formulas in docs/methods.md (MISLEADER).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .spec import MemberSpec


def kl_from_logits(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(softmax(p) ‖ softmax(q)) = Σ_k p_k (log p_k − log q_k), summed over classes, mean over batch."""
    log_p = F.log_softmax(p_logits.float(), -1)
    log_q = F.log_softmax(q_logits.float(), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def imitation_loss(member_logits_attack: Tensor, attacker_logits_attack: Tensor) -> Tensor:
    """Inner attacker objective L_A = KL(softmax(d(x_aug)) ‖ softmax(a(x_aug))), ``d`` detached."""
    return kl_from_logits(member_logits_attack.detach(), attacker_logits_attack)


def member_loss(
    member_logits_benign: Tensor,
    teacher_logits_benign: Tensor,
    labels: Tensor,
    member_logits_attack: Tensor,
    attacker_logits_attack: Tensor,
    spec: MemberSpec,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The member (defense) objective L_D, batch means, float32.

    ``L_D = α·T²·KL(softmax(t(x)/T) ‖ softmax(d(x)/T)) + (1 − α)·CE(d(x), y)
    − λ·KL(softmax(d(x_aug)) ‖ softmax(a(x_aug)))``

    Directions, as in the original code: the distillation KL has the **teacher** first (forward
    KL of Hinton KD, the target distribution weights the log-ratio); the divergence term has the
    **member** first — the same direction as the inner attacker's imitation loss
    (:func:`imitation_loss`), so the member maximises exactly the quantity the attacker minimises.
    The teacher and the attacker logits are detached; gradients flow into the member only. The
    original clamps teacher probabilities at 1e-10 and member probabilities at 1e-7; here both
    KLs use ``log_softmax`` (finite without clamps).

    Returns ``(total, parts)`` with detached ``parts``: ``kd`` (the soft KL, without α·T²),
    ``ce``, ``div`` (the member–attacker KL) and ``total``.
    """
    T = float(spec.temperature)
    kd = kl_from_logits(teacher_logits_benign.detach() / T, member_logits_benign / T)
    ce = F.cross_entropy(member_logits_benign.float(), labels)
    div = kl_from_logits(member_logits_attack, attacker_logits_attack.detach())
    total = spec.alpha * T * T * kd + (1.0 - spec.alpha) * ce - spec.lam * div
    parts = {"kd": kd.detach(), "ce": ce.detach(), "div": div.detach(), "total": total.detach()}
    return total, parts
