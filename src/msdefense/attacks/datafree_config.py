"""The knobs of the data-free extraction loop (:class:`DataFreeConfig`) and the papers' presets.

Defaults and presets come from the official scripts of DFME (Truong et al. 2021, CVPR:
``run_cifar_dfme.sh``, ``run_svhn_dfme.sh``), the MISLEADER fork of that code (Cheng et al. 2025,
``test.sh``) and the original MAZE code (Kariyappa et al. 2021, CVPR, ``sanjaykariyappa/MAZE``);
docs/methods.md (DFME, MAZE) states them with their sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

ORACLE_VIEWS = ("probabilities", "probabilities_as_logits")

# keys of a ``datafree.attacks.<name>`` entry that scope the runs instead of configuring the loop
SCOPE_KEYS = ("victims", "params")


class SettingError(ValueError):
    """A :class:`DataFreeConfig` field of the wrong type: ``field`` names it (the config key's last part)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


#: The numeric kinds of the fields, by their annotation (checked before any value).
_NUMERIC = {"int": "a whole number", "int | None": "a whole number", "float": "a number"}


def _check_types(config: DataFreeConfig) -> None:
    """Refuse a field whose value is not of its declared numeric kind: a whole-number field given
    ``2.0e+5`` (YAML's float) or ``2e5`` (YAML's text) would reach ``range()`` and kill a job late."""
    for f in fields(config):
        kind = _NUMERIC.get(str(f.type))
        value = getattr(config, f.name)
        if kind is None or (value is None and f.type == "int | None"):
            continue
        whole = kind == "a whole number"
        ok = not isinstance(value, bool) and isinstance(value, int if whole else (int, float))
        if not ok:
            hint = (
                f" (write {int(value)})" if whole and isinstance(value, float) and value.is_integer() else ""
            )
            if isinstance(value, str):
                hint = (
                    " (YAML reads 2e5 as text: write the digits, e.g. 200000)"
                    if whole
                    else " (YAML reads 1e-4 as text: write 1.0e-4)"
                )
            raise SettingError(f.name, f"must be {kind}, got {value!r}{hint}")


@dataclass(frozen=True)
class DataFreeConfig:
    """Knobs of the shared DFME / MAZE loop (defaults = DFME CIFAR-10, ``run_cifar_dfme.sh``)."""

    name: str = "dfme"
    query_budget: int = 20_000_000
    batch_size: int = 256
    g_iter: int = 1  # generator steps per iteration
    d_iter: int = 5  # student steps per iteration (each on a fresh, queried generator batch)
    grad_m: int = 1  # random directions of the zeroth-order estimator
    grad_epsilon: float = 1e-3  # finite-difference step in pre-tanh space
    lr_S: float = 0.1
    lr_G: float = 1e-4
    student_momentum: float = 0.9
    student_weight_decay: float = 5e-4
    generator_optimizer: Literal["adam", "sgd"] = "adam"
    generator_momentum: float = 0.9  # SGD generator only
    generator_weight_decay: float = 0.0
    loss: Literal["l1", "kl"] = "l1"
    logit_correction: Literal["mean", "none"] = "mean"  # ℓ1 only: centre log(p) per sample
    # added to the answered p before the logarithm (ℓ1 target, KL): the floor of log p, ln(1e-12) ≈ −27.6;
    # DFME took log_softmax of the victim's logits, unbounded below
    log_floor: float = 1e-12
    reuse_generator_batch: bool = False  # MAZE: first student step uses the generator batch (no new queries)
    replay_size: int = 0  # experience-replay capacity in images (0 = off); oldest dropped first
    iter_exp: int = 0  # extra student steps per iteration on replay samples (no queries)
    schedule: Literal["multistep", "cosine", "none"] = "multistep"
    milestones: tuple[float, ...] = (0.1, 0.3, 0.5)  # fractions of the total number of iterations
    gamma: float = 0.3
    nz: int = 256
    generator: str = "dfme"
    generator_width: int | None = None  # ngf; None = the paper width (64)
    input_range: Literal["tanh", "tanh_to_unit_then_normalise"] = "tanh"
    input_mean: tuple[float, ...] = (0.5,)
    input_std: tuple[float, ...] = (0.5,)
    # how the attack reads the oracle's probabilities p: "probabilities" (log p as logits, p as the KL
    # target) or "probabilities_as_logits" (the MISLEADER DFME fork's handling: p itself as logits)
    oracle_view: Literal["probabilities", "probabilities_as_logits"] = "probabilities"
    eval_every: int = 50  # iterations between validation evaluations (DFME: one epoch = 50 iterations)
    query_chunk: int = 8192  # images per oracle call (memory only; accounting is per image)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_types(self)
        checks = {
            "batch_size": self.batch_size >= 1,
            "g_iter": self.g_iter >= 1,
            "d_iter": self.d_iter >= 1,
            "grad_m": self.grad_m >= 1,
            "grad_epsilon": self.grad_epsilon > 0,
            "log_floor": self.log_floor > 0,
            "query_budget": self.query_budget >= 0,
            "replay_size": self.replay_size >= 0 and (self.iter_exp == 0 or self.replay_size > 0),
            "eval_every": self.eval_every >= 1,
            "loss": self.loss in ("l1", "kl"),
            "logit_correction": self.logit_correction in ("mean", "none"),
            "generator_optimizer": self.generator_optimizer in ("adam", "sgd"),
            "schedule": self.schedule in ("multistep", "cosine", "none"),
            "input_range": self.input_range in ("tanh", "tanh_to_unit_then_normalise"),
            "oracle_view": self.oracle_view in ORACLE_VIEWS,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid DataFreeConfig field(s): {', '.join(bad)}")
        if self.query_budget < self.cost_per_iteration:
            raise ValueError(
                f"query_budget {self.query_budget} is below the cost of one iteration ({self.cost_per_iteration} "
                f"queries at batch_size {self.batch_size}, grad_m {self.grad_m}, g_iter {self.g_iter}, d_iter "
                f"{self.d_iter}): the attack would not train; raise query_budget or lower batch_size"
            )

    @property
    def cost_per_iteration(self) -> int:
        """Oracle queries of one iteration: B·(g_iter·(m+1) + d_iter [− 1 when the generator batch is reused])."""
        student_batches = self.d_iter - (1 if self.reuse_generator_batch else 0)
        return self.batch_size * (self.g_iter * (self.grad_m + 1) + student_batches)

    def iterations_for(self, budget: int) -> int:
        return budget // self.cost_per_iteration

    def with_(self, **changes: Any) -> DataFreeConfig:
        return replace(self, **changes)


def dfme_cifar10(**overrides: Any) -> DataFreeConfig:
    """DFME on CIFAR-10 (``run_cifar_dfme.sh``): 20M queries, B 256, m 1, ε 1e-3, ℓ1 + mean correction,
    student SGD(0.1, .9, 5e-4), generator Adam(1e-4), ×0.3 at 10/30/50 %, cost 1792 / iteration.

    lr_G is the script's value since 2022-01-14 (it was 5e-4 before; cake-lab/datafree-model-extraction issue #2).
    """
    return DataFreeConfig(name="dfme_cifar10").with_(**overrides)


def dfme_svhn(**overrides: Any) -> DataFreeConfig:
    """DFME on SVHN (``run_svhn_dfme.sh``): 2M queries, lr_G 5e-5, ×0.3 at 50/80 %; else as CIFAR-10."""
    return DataFreeConfig(name="dfme_svhn", query_budget=2_000_000, lr_G=5e-5, milestones=(0.5, 0.8)).with_(
        **overrides
    )


def misleader_dfme(**overrides: Any) -> DataFreeConfig:
    """DFME as run by MISLEADER's ``test.sh``: B 2048, lr_G 1e-5, else DFME CIFAR-10 (cost 14 336).

    The probability-vs-logit confusion of that fork is *not* reproduced: see :mod:`msdefense.attacks.datafree`.
    """
    return DataFreeConfig(name="misleader_dfme", batch_size=2048, lr_G=1e-5).with_(**overrides)


def maze_cifar10(**overrides: Any) -> DataFreeConfig:
    """MAZE on CIFAR-10 (original ``sanjaykariyappa/MAZE``): 30M queries, B 128, 10 directions, μ 1e-3,
    KL loss, conv3_gen (nz 100), SGD clone lr 0.1 and SGD generator lr 1e-4 (both momentum .9, wd 5e-4),
    cosine per iteration, 5 clone steps (the first on the generator batch) + 10 replay steps; cost 1920.

    Uncertain: the 30M CIFAR-10 budget is corroborated by an independent reproduction config, not read from
    the paper's table; lr_gen is 1e-4 by default but 1e-3 in the README example. The original replay
    buffer is unbounded; here it holds ``replay_size`` = 250 000 images (≈ 3 GB float32 at 3×32×32), the
    oldest dropped first. Evaluation every 260 iterations ≈ the original ``log_iter`` of 5e5 queries.
    """
    return DataFreeConfig(
        name="maze_cifar10",
        query_budget=30_000_000,
        batch_size=128,
        grad_m=10,
        loss="kl",
        logit_correction="none",
        lr_G=1e-4,
        generator_optimizer="sgd",
        generator_momentum=0.9,
        generator_weight_decay=5e-4,
        reuse_generator_batch=True,
        replay_size=250_000,
        iter_exp=10,
        schedule="cosine",
        nz=100,
        generator="maze",
        eval_every=260,
    ).with_(**overrides)


PRESETS: dict[str, Callable[..., DataFreeConfig]] = {
    "dfme_cifar10": dfme_cifar10,
    "dfme_svhn": dfme_svhn,
    "misleader_dfme": misleader_dfme,
    "maze_cifar10": maze_cifar10,
}


def from_config(attack_cfg: Mapping[str, Any], seed: int = 0) -> DataFreeConfig:
    """The config of a ``datafree.attacks.<name>`` entry: its ``preset`` with every other key as an
    override (lists become tuples), except the run scope (``victims``, ``params``)."""
    overrides = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in attack_cfg.items()
        if k != "preset" and k not in SCOPE_KEYS
    }
    return PRESETS[attack_cfg["preset"]](**overrides, seed=seed)
