"""Model-extraction attacks.

KnockoffNets (:mod:`msdefense.attacks.knockoff`): a clone trained on the oracle's stored answers to
the attacker's transfer set. Data-free: DFME and MAZE, one loop (:mod:`msdefense.attacks.datafree`) configured by
:class:`DataFreeConfig` and its presets (:mod:`msdefense.attacks.datafree_config`).
"""

from msdefense.attacks.datafree import (
    DataFreeResult,
    ReplayBuffer,
    disagreement,
    load_best,
    run_datafree,
    to_victim_input,
    zo_gradient,
)
from msdefense.attacks.datafree_config import (
    PRESETS,
    DataFreeConfig,
    dfme_cifar10,
    dfme_svhn,
    maze_cifar10,
    misleader_dfme,
)
from msdefense.attacks.knockoff import KnockoffConfig, KnockoffResult, run_knockoff

__all__ = [
    "PRESETS",
    "DataFreeConfig",
    "DataFreeResult",
    "KnockoffConfig",
    "KnockoffResult",
    "ReplayBuffer",
    "dfme_cifar10",
    "dfme_svhn",
    "disagreement",
    "load_best",
    "maze_cifar10",
    "misleader_dfme",
    "run_datafree",
    "run_knockoff",
    "to_victim_input",
    "zo_gradient",
]
