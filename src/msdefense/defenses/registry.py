"""The registry of defense methods: name → builder, declared options and auxiliary models.

Each method module registers one :class:`DefenseMethod` on import; a built-in method's module is
imported the first time its name is looked up (:data:`METHOD_MODULES`), so a job imports, and its
code fingerprint covers, only the methods it applies (msdefense.fingerprint). Its ``options`` (see
:mod:`.options`) are the only statement of the method's option names, types, ranges and
defaults: :func:`check_defense_config` checks a config entry against them before any job runs,
and :func:`build_defense` / :func:`required_aux_models` resolve the same declaration, so a
builder only ever sees checked options with every default filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from torch import nn

from ..registry import Registry
from .base import Defense
from .options import Option, OptionError, finite_number, resolve

# (options, dataset or None, aux models, seed) -> Defense; ``options`` are resolved (defaults filled in).
Builder = Callable[[Mapping[str, Any], str | None, Mapping[str, nn.Module], int], Defense]
# Keys of every config entry that are not options of the method: checked by check_defense_config.
ENTRY_KEYS = ("method", "params")
#: The largest sweep value of any method (a method may declare a smaller one, ``param_max``): the
#: answers are computed in float32, where a value like 1e300 is infinite and every answer NaN.
SWEEP_MAX = 1e6


def _no_aux(options: Mapping[str, Any]) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class DefenseMethod:
    """A registered method: its builder, its declared options and the auxiliary models it needs.

    ``aux_models(options)`` names the models (``"misinformation"``, ``"surrogate_e10"``) from the
    resolved options; the workflow trains them and ``build`` receives them, loaded.
    """

    name: str
    build: Builder
    _: KW_ONLY
    options: Mapping[str, Option] = field(default_factory=dict)
    aux_models: Callable[[Mapping[str, Any]], tuple[str, ...]] = _no_aux
    #: the largest sweep value the method can use, and why (None: any value >= 0)
    param_max: tuple[float, str] | None = None
    #: the smallest sweep value, and why (None: 0)
    param_min: tuple[float, str] | None = None
    #: whether the sweep values are whole numbers (a count of classes or of decimals)
    integer_params: bool = False

    def example_sweep(self) -> list[float]:
        """Four valid sweep values from the smallest up (for tests and documentation)."""
        low = self.param_min[0] if self.param_min else 0.0
        high = self.param_max[0] if self.param_max else SWEEP_MAX
        step = 1.0 if self.integer_params else 0.5
        return [v for v in (low, low + step, low + 2 * step, low + 3 * step) if v <= high]

    def resolve(self, entry: Mapping[str, Any], *, key: str) -> dict[str, Any]:
        """The options of config ``entry`` checked, defaults filled in (``method``/``params`` not included)."""
        return resolve(self.options, entry, key=key, owner=f"method {self.name}", reserved=ENTRY_KEYS)


#: every built-in method and the module that registers it (the one list of built-in methods)
METHOD_MODULES: Mapping[str, str] = {
    "None": "msdefense.defenses.none",
    "DCP": "msdefense.defenses.dcp",
    "ReverseSigmoid": "msdefense.defenses.reverse_sigmoid",
    "AdaptiveMisinformation": "msdefense.defenses.adaptive_misinformation",
    "Random": "msdefense.defenses.random_perturbation",
    "MAD": "msdefense.defenses.mad",
    "GRAD": "msdefense.defenses.grad",
    "TopK": "msdefense.defenses.top_k",
    "Rounding": "msdefense.defenses.rounding",
}


def _outside(found: Any, path: str) -> DefenseMethod:
    """The method an import path names: a :class:`DefenseMethod`, filed under the path."""
    if not isinstance(found, DefenseMethod):
        raise TypeError(
            f"names a {type(found).__name__}, not a msdefense.defenses.DefenseMethod (docs/api.md, "
            '"A defense of your own")'
        )
    return found


#: name → :class:`DefenseMethod` of every method (built-in ones imported on first lookup; a name
#: ``package.module:NAME`` imports the method defined there)
DEFENSES: Registry[DefenseMethod] = Registry(kind="defense method", modules=METHOD_MODULES, imported=_outside)


def register(method: DefenseMethod) -> DefenseMethod:
    """Add ``method`` to :data:`DEFENSES` (a name registered twice is an error)."""
    return DEFENSES.file(method.name, method)


def _method(cfg: Mapping[str, Any], key: str) -> DefenseMethod:
    if "method" not in cfg:
        raise OptionError(f"{key}.method is required")
    name = cfg["method"]
    if name not in DEFENSES:
        raise OptionError(
            f"{key}.method: unknown defense method {name!r}; known: {', '.join(sorted(DEFENSES))}"
        )
    return DEFENSES[name]


def check_defense_config(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Config entry ``defenses.<name>`` checked against its method's declaration, defaults filled in.

    Returns ``{"method", "params", **options}``. Raises :class:`OptionError` (a ``ValueError``)
    naming ``defenses.<name>.<key>`` and what is allowed: unknown keys, wrong types, values out
    of range, NaN or infinity, choices not in the list, and a sweep that is not a non-empty list
    of finite numbers ≥ 0.
    """
    key = f"defenses.{name}"
    method = _method(entry, key)
    if "params" not in entry:
        raise OptionError(f"{key}.params is required (the sweep: a non-empty list of numbers >= 0)")
    params = entry["params"]
    if not isinstance(params, list | tuple) or not params:
        raise OptionError(f"{key}.params: expected a non-empty list of numbers >= 0, got {params!r}")
    sweep = [finite_number(p, f"{key}.params[{i}]", "a number >= 0") for i, p in enumerate(params)]
    negative = [p for p in sweep if p < 0]
    if negative:
        raise OptionError(f"{key}.params: values must be >= 0, got {negative}")
    limit, why = method.param_max or (SWEEP_MAX, "the answers are computed in float32")
    above = [p for p in sweep if p > limit]
    if above:
        raise OptionError(f"{key}.params: values must be <= {limit:g} ({why}), got {above}")
    if method.param_min is not None:
        low, why = method.param_min
        below = [p for p in sweep if p < low]
        if below:
            raise OptionError(f"{key}.params: values must be >= {low:g} ({why}), got {below}")
    if method.integer_params:
        fractional = [p for p in sweep if p != int(p)]
        if fractional:
            raise OptionError(
                f"{key}.params: {method.name} takes whole numbers (e.g. {method.example_sweep()[:2]}), "
                f"got {fractional}"
            )
    return {"method": entry["method"], "params": sweep, **method.resolve(entry, key=key)}


def defense_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The options of defense config ``cfg`` (key ``method``; ``params`` optional), defaults filled in."""
    method = _method(cfg, "defense")
    return method.resolve(cfg, key=method.name)


def required_aux_models(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of the auxiliary models the defense config ``cfg`` needs."""
    return DEFENSES[cfg["method"]].aux_models(defense_options(cfg))


def build_defense(
    cfg: Mapping[str, Any],
    dataset: str | None = None,
    aux: Mapping[str, nn.Module] | None = None,
    seed: int = 0,
) -> Defense:
    """Build the defense of config entry ``cfg`` (key ``method``) for a victim trained on ``dataset``
    (needed only where an option depends on it, ``gamma_by_dataset``).

    ``cfg`` may be partial (``{"method": "DCP"}``): missing options take their declared defaults.
    """
    method = cfg.get("method")
    if method not in DEFENSES:
        raise KeyError(f"unknown defense method {method!r}; known: {', '.join(sorted(DEFENSES))}")
    options = defense_options(cfg)
    aux = dict(aux or {})
    missing = [name for name in DEFENSES[method].aux_models(options) if name not in aux]
    if missing:
        raise ValueError(f"defense {method!r} needs the auxiliary models {missing}")
    return DEFENSES[method].build(options, dataset, aux, seed)


__all__ = [
    "DEFENSES",
    "ENTRY_KEYS",
    "METHOD_MODULES",
    "DefenseMethod",
    "build_defense",
    "check_defense_config",
    "defense_options",
    "register",
    "required_aux_models",
]
