"""Declared options of the defenses: each method states its options once, with type, range and default.

In the spirit of ART's postprocessors (``params`` plus ``_check_params``): a method lists its
options as :class:`Option` values; :func:`resolve` checks a config entry against that list and
returns the options with the defaults filled in. Unknown keys, wrong types, values out of range,
NaN / infinity and choices not in the list are refused with an :class:`OptionError` that names
the key and what is allowed. The defaults are documented in docs/methods.md.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class OptionError(ValueError):
    """A defense option that is unknown, of the wrong type or out of range (the message names the key)."""


def _closest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def finite_number(value: object, key: str, allowed: str = "a finite number") -> float:
    """``value`` as a float if it is a finite int or float (not a bool); else :class:`OptionError`.

    ``allowed`` says in words what the key accepts, for the message.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionError(f"{key}: expected {allowed}, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise OptionError(f"{key}: {value!r} is not a finite number; allowed: {allowed}")
    return number


@dataclass(frozen=True)
class Option:
    """One option of a defense method.

    ``type`` is ``float`` (any finite int or float), ``int``, ``bool``, ``str`` (with ``choices``)
    or ``dict`` (a mapping dataset name → finite number; the bounds apply to its values).
    """

    name: str
    type: type
    default: Any
    doc: str = ""
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in (float, int, bool, str, dict):
            raise TypeError(
                f"option {self.name!r}: type must be float, int, bool, str or dict, not {self.type}"
            )
        if self.choices and self.type is not str:
            raise TypeError(f"option {self.name!r}: choices need type str")

    def allowed(self) -> str:
        """What the option accepts, in words (``a number > 0``, ``one of 'a', 'b'``)."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        bounds = []
        if self.exclusive_minimum is not None:
            bounds.append(f"> {self.exclusive_minimum:g}")
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        number = {float: "a number", int: "an integer", dict: "a mapping dataset -> number"}
        words = {bool: "true or false", str: "a string", **number}[self.type]
        return " ".join([words, *([" and ".join(bounds)] if bounds else [])])

    def _check_bounds(self, number: float, key: str) -> None:
        if (
            (self.exclusive_minimum is not None and number <= self.exclusive_minimum)
            or (self.minimum is not None and number < self.minimum)
            or (self.maximum is not None and number > self.maximum)
        ):
            raise OptionError(f"{key}: {number!r} is out of range; allowed: {self.allowed()}")

    def check(self, value: object, key: str) -> Any:
        """``value`` checked and converted to the option's type; :class:`OptionError` naming ``key`` if bad."""
        wrong = f"{key}: expected {self.allowed()}, got {type(value).__name__} {value!r}"
        if self.type is bool:
            if not isinstance(value, bool):
                raise OptionError(wrong)
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise OptionError(wrong)
            if self.choices and value not in self.choices:
                raise OptionError(
                    f"{key}: {value!r} is not allowed{_closest(value, self.choices)}; allowed: {self.allowed()}"
                )
            return value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise OptionError(wrong)
            self._check_bounds(value, key)
            return value
        if self.type is dict:
            if not isinstance(value, Mapping):
                raise OptionError(wrong)
            out = {}
            for name, item in value.items():
                if not isinstance(name, str):
                    raise OptionError(f"{key}: keys must be dataset names (strings), got {name!r}")
                number = finite_number(item, f"{key}.{name}", self.allowed())
                self._check_bounds(number, f"{key}.{name}")
                out[name] = number
            return out
        number = finite_number(value, key, self.allowed())
        self._check_bounds(number, key)
        return number


def declare(*options: Option) -> dict[str, Option]:
    """The options of one method, by name (a name declared twice is an error)."""
    out: dict[str, Option] = {}
    for option in options:
        if option.name in out:
            raise ValueError(f"option {option.name!r} declared twice")
        option.check(option.default, f"default of {option.name}")
        out[option.name] = option
    return out


def defaults(options: Mapping[str, Option]) -> dict[str, Any]:
    """``{name: default}`` of the declared ``options`` (mappings copied)."""
    return {name: dict(o.default) if o.type is dict else o.default for name, o in options.items()}


def resolve(
    options: Mapping[str, Option],
    values: Mapping[str, Any],
    *,
    key: str,
    owner: str = "",
    reserved: Iterable[str] = (),
) -> dict[str, Any]:
    """The declared ``options`` checked against ``values`` with the defaults filled in.

    ``key`` prefixes every message (``defenses.DCP``) and ``owner`` names whose options they are
    (``method DCP``); keys in ``reserved`` (``method``, ``params``) are skipped here and checked by
    the caller. An unknown key is refused with the known names and the closest one.
    """
    reserved = tuple(reserved)
    known = [*reserved, *options]
    for name in values:
        if name not in options and name not in reserved:
            whose = f" of {owner}" if owner else ""
            raise OptionError(
                f"{key}.{name}: unknown option{whose}{_closest(str(name), known)}; known: {', '.join(known)}"
            )
    resolved = defaults(options)
    for name, option in options.items():
        if name in values:
            resolved[name] = option.check(values[name], f"{key}.{name}")
    return resolved


__all__ = ["Option", "OptionError", "declare", "defaults", "finite_number", "resolve"]


#: ``param_max`` of the methods whose sweep value is an L1 budget ε around the victim's answer
L1_BUDGET_MAX = (2.0, "ε is an L1 distance between two probability vectors, at most 2")
