"""Edge inputs to every defense: an empty batch, NaN images, integer posteriors, a class count
that does not match the auxiliary models, and answers off the simplex (checked on every call)."""

from __future__ import annotations

import pytest
import torch
from test_defense_properties import (
    NAMES,
    batch,
    config_for,  # noqa: I001  (a helper of the same test package)
    make_defense,
    queries,
    sweep_for,
    tiny_aux_model,
)

from msdefense.config import ConfigError
from msdefense.defenses import build_defense, required_aux_models
from msdefense.defenses.base import Defense

K = 10
USES_INPUT = sorted(n for n in NAMES if make_defense(n, K).uses_input)
WITH_AUX = sorted(n for n in NAMES if required_aux_models(config_for(n)))


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_gets_an_empty_answer(name: str) -> None:
    x = queries(0)
    out = make_defense(name, K).perturb(x, torch.zeros(0, K), sweep_for(name))
    assert out.shape == (len(sweep_for(name)), 0, K)


@pytest.mark.parametrize("name", NAMES)
def test_nan_posteriors_are_refused(name: str) -> None:
    x, y = batch(K)
    y[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        make_defense(name, K).perturb(x, y, sweep_for(name))


@pytest.mark.parametrize("name", USES_INPUT)
def test_a_nan_image_is_refused_before_any_work(name: str) -> None:
    x, y = batch(K)
    x[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="input images contain NaN or inf"):
        make_defense(name, K).perturb(x, y, sweep_for(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_one_hot_posteriors_answer_as_their_float_version(name: str, dtype: torch.dtype) -> None:
    labels = torch.arange(16) % K
    one_hot = torch.nn.functional.one_hot(labels, K).to(dtype)
    x = queries(len(labels))
    defense = make_defense(name, K, seed=2)
    as_int = defense.perturb(x, one_hot, sweep_for(name))
    as_float = make_defense(name, K, seed=2).perturb(
        x, one_hot.to(torch.get_default_dtype()), sweep_for(name)
    )
    assert as_int.is_floating_point()
    torch.testing.assert_close(as_int, as_float)


@pytest.mark.parametrize("name", WITH_AUX)
def test_auxiliary_models_of_another_class_count_are_refused(name: str) -> None:
    cfg = config_for(name)
    aux = {a: tiny_aux_model(a, K + 3, seed=1) for a in required_aux_models(cfg)}
    defense = build_defense(cfg, "digits", aux)
    x, y = batch(K)
    with pytest.raises(ValueError, match=rf"gives {K + 3} classes but the victim's posteriors have {K}"):
        defense.perturb(x, y, sweep_for(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_answers_are_on_the_simplex(name: str, seed: int) -> None:
    x, y = batch(K, dtype=torch.float32, seed=seed)
    out = make_defense(name, K, seed=seed).perturb(x, y, sweep_for(name))
    assert torch.isfinite(out).all() and out.min() >= -1e-6
    torch.testing.assert_close(out.sum(-1), torch.ones(out.shape[:2]), atol=1e-4, rtol=0)


class _OffSimplex(Defense):
    method = "OffSimplex"

    def _perturb(self, x, probs, params):
        return probs.expand(len(params), *probs.shape) * 2


def test_an_answer_off_the_simplex_is_an_error_naming_the_method() -> None:
    """A defense defined outside the package (here: in this test module) is told what to fix; the
    package is not blamed for it."""
    x, y = batch(K)
    with pytest.raises(RuntimeError, match="OffSimplex returned answers off the probability simplex") as err:
        _OffSimplex().perturb(x, y, [0.1])
    assert "bug in the package" not in str(err.value) and f"in {__name__}" in str(err.value)
    from msdefense.defenses.base import check_simplex

    with pytest.raises(RuntimeError, match="bug in the package's defense"):
        check_simplex(y * 2, "DCP", "msdefense.defenses.dcp")


@pytest.mark.parametrize(
    "method, params, limit",
    [
        ("Random", [0.5, 2.5], "2"),
        ("MAD", [3.0], "2"),
        ("GRAD", [2.01], "2"),
        ("AdaptiveMisinformation", [1.2], "1"),
    ],
)
def test_sweep_values_beyond_what_the_method_can_use_are_refused(
    default_config, method, params, limit
) -> None:
    from snakemake.utils import validate
    from test_hostile_configs import SCHEMA

    from msdefense.preflight import preflight

    name = next(n for n, d in default_config["defenses"].items() if d["method"] == method)
    default_config["defenses"][name]["params"] = params
    for victim in default_config["victims"].values():
        victim.get("defenses", {}).pop(name, None)
    default_config["datafree"]["params"].pop(name, None)
    with pytest.raises(ConfigError, match=rf"defenses.{name}.params: values must be <= {limit} "):
        preflight(default_config, validate=lambda c: validate(c, str(SCHEMA)))
