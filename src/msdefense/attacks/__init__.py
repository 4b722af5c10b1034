"""Model-extraction attacks. Data-free: DFME and MAZE (:mod:`msdefense.attacks.datafree`)."""

from msdefense.attacks.datafree import (
    PRESETS,
    DataFreeConfig,
    DataFreeResult,
    ReplayBuffer,
    dfme_cifar10,
    dfme_svhn,
    disagreement,
    load_best,
    maze_cifar10,
    misleader_dfme,
    run_datafree,
    to_victim_input,
    zo_gradient,
)

__all__ = [
    "PRESETS",
    "DataFreeConfig",
    "DataFreeResult",
    "ReplayBuffer",
    "dfme_cifar10",
    "dfme_svhn",
    "disagreement",
    "load_best",
    "maze_cifar10",
    "misleader_dfme",
    "run_datafree",
    "to_victim_input",
    "zo_gradient",
]
