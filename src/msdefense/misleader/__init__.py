"""MISLEADER: distilled defense members pushed away from a simulated attacker, and their ensemble.

Cheng, Zheng, Zhu and Dong 2025, "MISLEADER: Defending against Model Extraction with Ensembles of
Distilled Models" (arXiv 2506.02362; code ``LabRAI/MISLEADER``). Each *member* ``d`` is distilled
from the frozen victim ("teacher") ``t`` on benign training data while it maximises its divergence
from an *inner attacker* ``a`` that imitates ``d`` on "attacker-like" queries: the paper's bilevel
problem, approximated by one alternating attacker / member update per batch. K heterogeneous
members form a soft-voting ensemble, the deployed victim. Formulas and defaults:
docs/methods.md (MISLEADER).

Modules, in the order the workflow uses them: :mod:`.spec` (what a member is, how it is trained),
:mod:`.augment` (attacker-like queries), :mod:`.losses`, :mod:`.member` (:func:`train_member`),
:mod:`.ensemble` (:class:`Ensemble`).

Deviations from the original code, all deliberate (docs/deviations.md, MISLEADER):

* model selection on a held-out **validation** split, not the test set;
* the attacker-like augmentation of 1-channel digits has no colour jitter and no flips; it is a
  batched tensor transform with a seeded generator (no PIL, no worker processes);
* the cosine schedules are stepped per iteration (T_max = epochs × steps), without the
  original's one-epoch shift; bfloat16 autocast on CUDA (no GradScaler needed), fp32 on CPU;
* the member's output on the attacker batch is computed once per step, with gradient, and its
  detached copy is the inner attacker's target (the original recomputed it ``a_iter + 1`` times;
  identical for models without dropout, and BN running statistics see the batch once);
* the ensemble's ``forward`` returns ``log(mean softmax)`` so that the oracle's softmax gives back
  exactly the soft vote (the original attack code fed probabilities where logits were expected).
"""

from .augment import AUGMENTATIONS, CIFAR_AUG, DIGITS_AUG, attacker_like
from .ensemble import Ensemble
from .losses import imitation_loss, kl_from_logits, member_loss
from .member import train_member
from .spec import MemberRecipe, MemberSpec

__all__ = [
    "AUGMENTATIONS",
    "CIFAR_AUG",
    "DIGITS_AUG",
    "Ensemble",
    "MemberRecipe",
    "MemberSpec",
    "attacker_like",
    "imitation_loss",
    "kl_from_logits",
    "member_loss",
    "train_member",
]
