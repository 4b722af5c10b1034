"""Random, the random-perturbation baseline of Mazeika et al., "How to Steer Your Adversary:
Targeted and Efficient Model Stealing Defenses with Gradient Redirection" (GRAD², ICML 2022), as
implemented in the paper code of Khaled et al. (ICMLA 2023, ``method_rand_perturbation``);
docs/methods.md.

For a posterior y and sweep value ε (an L1 budget), each query draws one class j uniformly among
the K − 1 classes other than its argmax, and

    α = min(ε / 2, 1) ;   ỹ = (1 − α) y + α e_j ,   ‖ỹ − y‖₁ = 2α (1 − y_j) ≤ ε.

Differences from the original code (docs/deviations.md):

* Seeded: the draws come from a ``torch.Generator`` seeded with the experiment-derived seed (the
  original uses the unseeded global numpy RNG). The generator lives on the CPU, so the
  draws do not depend on the device; it advances once per batch (one draw per query), and the
  same j serves every ε of the sweep, so a sweep equals separate single-ε calls made with a
  freshly seeded generator.
* ε > 2 is clamped to α = 1 (ỹ = e_j); the original's weight 1 − ε/2 would go negative and leave
  the simplex. The original sweeps stop at ε = 1.5, where both agree.
* Argmax ties resolve to the first maximal class (as ``np.argmax`` does in the original).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .base import Defense
from .options import L1_BUDGET_MAX
from .registry import DefenseMethod, register


class RandomPerturbation(Defense):
    """Random-direction baseline of Mazeika et al. (GRAD², ICML 2022); docs/methods.md.

    The sweep value is the L1 budget ε; ε = 0 returns the input exactly.
    """

    method = "Random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.generator = torch.Generator(device="cpu")
        self.reset()

    def reset(self) -> None:
        """Re-seed the generator: the next batches repeat the draws of a fresh instance."""
        self.generator.manual_seed(self.seed)

    def draw_classes(self, probs: Tensor) -> Tensor:
        """One class per query, uniform over the K − 1 non-argmax classes: ``[B]`` long on probs' device."""
        batch, k = probs.shape
        if k < 2:
            raise ValueError("Random needs at least 2 classes to move probability mass to")
        top = probs.argmax(-1)
        r = torch.randint(0, k - 1, (batch,), generator=self.generator).to(probs.device)
        return r + (r >= top).long()  # skip the argmax: {0..K-2} -> {0..K-1} \ {argmax}

    def _perturb(self, x: Tensor | None, probs: Tensor, params: Tensor) -> Tensor:
        j = self.draw_classes(probs)
        target = torch.nn.functional.one_hot(j, probs.shape[-1]).to(probs.dtype)  # [B, K]
        alpha = (params / 2).clamp(max=1).view(-1, 1, 1)  # [E, 1, 1]
        return (1 - alpha) * probs.unsqueeze(0) + alpha * target.unsqueeze(0)

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "seed": self.seed}


def _build(options: Mapping[str, Any], dataset: str, aux: Mapping[str, nn.Module], seed: int) -> Defense:
    return RandomPerturbation(seed=seed)


register(DefenseMethod("Random", _build, param_max=L1_BUDGET_MAX))
