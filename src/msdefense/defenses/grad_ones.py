"""GRAD's ALL-ONES scores by forward propagation rules, without materialising the weight tangents.

The ALL-ONES target of GRAD² (Mazeika et al., ICML 2022) is t = −1 on every surrogate parameter,
and the scores are the directional derivative of ``log_softmax(S(x; θ))`` along t
(:mod:`.grad`). A generic Jacobian-vector product pays, per convolution, for the primal, the
input-tangent and the weight-tangent convolutions. With a constant weight tangent c the last one
collapses: ``conv(x, c·1)`` is c times the k×k box sum of the channel sum of x, the same for
every output channel, one single-channel convolution. For an eval-mode ``Conv2d → BatchNorm2d``
pair folded to ``conv(x; W·s) + shift`` (:func:`.grad_fold.conv_bn`, s = γ/√(σ²+ε)), the tangents are

    d(W·s) = c·s ⊗ 1 + W·ds,   ds = c/√(σ²+ε) (γ present, else 0),
    d shift = c [β] − μ·ds + c·s + b·ds [conv bias b],

so ``dy = conv(dx, W·s) + c·s·box(x) + ds·conv(x, W) + d shift``, and ``ds·conv(x, W)`` is
``(c/γ)·(y − shift)``, read off the primal output: two convolutions instead of three (one for
the first layer, where dx = 0), with fused biases. :class:`AllOnesRules` walks the ``torch.fx``
graph of the (folded) surrogate with one rule per operation kind, resolved once per graph;
:func:`rules_for` returns None when a node has no rule, and GRAD then uses ``torch.func.jvp``.
The scores equal the jvp's up to float rounding (tests/test_grad_ones.py: 1e-10 in float64). In float32 a
pre-activation within rounding of zero can fall on the other side of a ReLU than in the jvp,
which changes the tangent at that unit: answers may differ for a rare row, as between any two
float32 evaluation orders.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from .grad_fold import C, conv_bn
from .grad_fold import fold as _fold

Pair = tuple[Any, Tensor | None]  # (primal, tangent or None for an exact zero)


def _box(x: Tensor, kernel: tuple[int, int], stride: Any, padding: Any, dilation: Any) -> Tensor:
    """``conv(x, 1)`` for an all-ones [·, C_in, kh, kw] kernel: one channel, broadcast over outputs."""
    ones = x.new_ones(1, 1, *kernel)
    return F.conv2d(x.sum(1, keepdim=True), ones, None, stride, padding, dilation)


def _conv_rule(
    x: Pair,
    weight: Tensor,
    *,
    shift: Tensor | None,
    dshift: Tensor,
    box_scale: Tensor,
    primal_ratio: Tensor | None,
    geometry: dict[str, Any],
) -> Pair:
    """``y = conv(x, W) + shift`` and its tangent

        dy = conv(dx, W) + box_scale·box(x) + primal_ratio·(y − shift) + dshift,

    two convolutions with fused biases and two broadcast multiply-adds (``addcmul``).
    """
    xp, dx = x
    y = F.conv2d(xp, weight, shift, **geometry)
    bias = dshift if primal_ratio is None or shift is None else dshift - primal_ratio * shift
    if dx is not None:
        dy = F.conv2d(dx, weight, bias, **geometry)
    else:
        dy = bias.view(1, -1, 1, 1).expand_as(y).contiguous(memory_format=_format(y))
    if primal_ratio is not None:
        dy = dy.addcmul_(primal_ratio.view(1, -1, 1, 1), y)
    box = _box(xp, weight.shape[-2:], geometry["stride"], geometry["padding"], geometry["dilation"])
    return y, dy.addcmul_(box, box_scale.view(1, -1, 1, 1))


def _format(t: Tensor) -> torch.memory_format:
    return (
        torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    )


def _folded_conv(
    x: Pair,
    weight: Pair,
    bias: Pair,
    gamma: Pair,
    beta: Pair,
    mean: Pair,
    *,
    cache: dict | None = None,
    **kw: Any,
) -> Pair:
    """A folded eval-mode ``Conv2d → BatchNorm2d`` (:func:`.grad_fold.conv_bn`): W_f = W·s, shift =
    β − μ·s + b·s; along C the weight tangent is C·s ⊗ 1 + W·ds with ds = C·r (r = 1/√(σ²+ε)),
    and ``conv(x, W·ds) = (ds/s)·(y − shift)`` = (C/γ)·(y − shift) reuses the primal output.

    ``cache`` keeps the folded constants between calls while the parameters are unchanged (their
    version counters): a frozen surrogate folds once instead of on every query batch."""
    tensors = (weight[0], bias[0], gamma[0], beta[0], mean[0], kw["var"][0])
    key = tuple((id(t), t._version) if t is not None else None for t in tensors)
    folded = cache.get(key) if cache is not None else None
    if folded is None:
        w, b, g, be, mu, var = tensors
        folded = _fold(w, b, g=g, be=be, mu=mu, var=var, eps=kw["eps"])
        if cache is not None:
            cache.clear()
            cache[key] = folded
    geometry = {k: kw[k] for k in ("stride", "padding", "dilation")}
    y, dy = _conv_rule(
        x,
        folded.weight,
        shift=folded.shift,
        dshift=folded.dshift,
        box_scale=folded.box_scale,
        primal_ratio=folded.primal_ratio,
        geometry=geometry,
    )
    if folded.extra_weight is not None:
        dy = dy + F.conv2d(x[0], folded.extra_weight, None, **geometry)
    return y, dy


def _conv_module(m: nn.Conv2d, x: Pair) -> Pair:
    geometry = {"stride": m.stride, "padding": m.padding, "dilation": m.dilation}
    out_channels = m.weight.shape[0]
    dshift = m.weight.new_full((out_channels,), C if m.bias is not None else 0.0)
    box_scale = m.weight.new_full((out_channels,), C)
    return _conv_rule(
        x, m.weight, shift=m.bias, dshift=dshift, box_scale=box_scale, primal_ratio=None, geometry=geometry
    )


def _linear_module(m: nn.Linear, x: Pair) -> Pair:
    xp, dx = x
    y = F.linear(xp, m.weight, m.bias)
    dy = C * xp.sum(-1, keepdim=True) + (C if m.bias is not None else 0.0)
    if dx is not None:
        dy = dy + F.linear(dx, m.weight)
    return y, dy.expand_as(y)


def _relu(x: Pair) -> Pair:
    xp, dx = x
    y = torch.relu(xp)
    return y, None if dx is None else torch.ops.aten.threshold_backward(dx, y, 0)


def _relu_inplace(x: Pair) -> Pair:
    """:func:`_relu` overwriting its input, for an input no other node reads (one fewer pass)."""
    xp, dx = x
    y = xp.relu_()
    return y, None if dx is None else torch.ops.aten.threshold_backward(dx, y, 0)


def _maxpool_module(m: nn.MaxPool2d, x: Pair) -> Pair:
    xp, dx = x
    y, idx = F.max_pool2d(
        xp, m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode, return_indices=True
    )
    if dx is None:
        return y, None
    flat = dx.flatten(2).gather(2, idx.flatten(2))
    return y, flat.view_as(y)


def _linear_op(fn: Callable[[Tensor], Tensor]) -> Callable[[Pair], Pair]:
    def rule(x: Pair) -> Pair:
        xp, dx = x
        return fn(xp), None if dx is None else fn(dx)

    return rule


def _add(a: Pair, b: Pair) -> Pair:
    (ap, da), (bp, db) = a, b
    tangent = da if db is None else db if da is None else da + db
    return ap + bp, tangent


def _add_inplace(a: Pair, b: Pair) -> Pair:
    """:func:`_add` into ``a``'s tensors, for an ``a`` that is a fresh convolution result (primal and
    tangent) no other node reads; falls back where the sum would not fit ``a``."""
    (ap, da), (bp, db) = a, b
    fits = torch.is_tensor(bp) and bp.shape == ap.shape and bp.dtype == ap.dtype
    if not fits or (db is not None and (da is None or db.shape != da.shape)):
        return _add(a, b)
    tangent = da if db is None else da.add_(db)
    return ap.add_(bp), tangent


def _batchnorm_module(m: nn.BatchNorm2d, x: Pair) -> Pair:
    """Eval-mode BN ``(x − μ)·s + β`` with s = γ/√(σ²+ε) and the constant tangent on γ and β."""
    xp, dx = x
    assert m.running_mean is not None and m.running_var is not None
    r = (m.running_var + m.eps).rsqrt().view(1, -1, 1, 1)
    centred = xp - m.running_mean.view(1, -1, 1, 1)
    scale = r if m.weight is None else m.weight.view(1, -1, 1, 1) * r
    y = centred * scale + (0.0 if m.bias is None else m.bias.view(1, -1, 1, 1))
    dy = torch.zeros_like(y) if dx is None else dx * scale
    if m.weight is not None:
        dy = dy + C * r * centred
    if m.bias is not None:
        dy = dy + C
    return y, dy


def _module_rule(m: nn.Module) -> Callable[[Pair], Pair] | None:
    if isinstance(m, nn.Conv2d) and m.groups == 1 and m.padding_mode == "zeros":
        return lambda x: _conv_module(m, x)  # type: ignore[arg-type]
    if isinstance(m, nn.Linear):
        return lambda x: _linear_module(m, x)  # type: ignore[arg-type]
    if isinstance(m, nn.ReLU):
        return _relu
    if isinstance(m, nn.MaxPool2d) and not m.return_indices:
        return lambda x: _maxpool_module(m, x)  # type: ignore[arg-type]
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return _linear_op(m)
    if isinstance(m, nn.AvgPool2d | nn.Flatten | nn.Identity):
        return _linear_op(m)
    if isinstance(m, nn.BatchNorm2d) and not m.training and m.running_mean is not None:
        return lambda x: _batchnorm_module(m, x)  # type: ignore[arg-type]
    if isinstance(m, nn.Dropout) and not m.training:
        return _linear_op(lambda t: t)
    return None


def _function_rule(node: fx.Node) -> Callable[..., Pair] | None:

    target = node.target
    if target is conv_bn and node.kwargs.get("groups", 1) == 1:
        return _folded_conv
    if target in (operator.add, torch.add) and len(node.args) == 2 and not node.kwargs:
        return _add
    if target in (torch.relu, F.relu) and len(node.args) == 1:
        return _relu
    if target in (torch.flatten, F.adaptive_avg_pool2d, F.avg_pool2d):
        return lambda x, *a, **k: _linear_op(lambda t: target(t, *a, **k))(x)
    return None


def _method_rule(node: fx.Node) -> Callable[..., Pair] | None:
    if node.target in ("view", "reshape", "flatten"):
        name = str(node.target)
        return lambda x, *a: _linear_op(lambda t: getattr(t, name)(*a))(x)
    if node.target == "size":
        return lambda x, *a: (x[0].size(*a), None)
    return None


class AllOnesRules:
    """The rule of every node of an fx graph, resolved once; calling it on x gives
    ``Σ_θ −∂ log_softmax(S(x; θ))_k / ∂θ`` per row ``[B, K]`` (not yet divided by B).

    A ReLU overwrites its input when that is a fresh result no other node reads.
    Raises :class:`NotImplementedError` at construction when a node has no rule.
    """

    def __init__(self, gm: fx.GraphModule) -> None:
        modules = dict(gm.named_modules())
        self._steps: list[tuple[fx.Node, Callable[[dict[fx.Node, Pair]], Pair]]] = []
        self._input: fx.Node | None = None
        self._output: Any = None
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if self._input is not None:
                    raise NotImplementedError("more than one input")
                self._input = node
            elif node.op == "output":
                self._output = node.args[0]
            else:
                self._steps.append((node, self._step(gm, modules, node)))
        if self._input is None or not isinstance(self._output, fx.Node):
            raise NotImplementedError("one input and one output tensor are needed")

    @staticmethod
    def _step(
        gm: fx.GraphModule, modules: dict[str, nn.Module], node: fx.Node
    ) -> Callable[[dict[fx.Node, Pair]], Pair]:
        def pair(arg: Any, env: dict[fx.Node, Pair]) -> Pair:
            return env[arg] if isinstance(arg, fx.Node) else (arg, None)

        def plain(arg: Any, env: dict[fx.Node, Pair]) -> Any:
            return env[arg][0] if isinstance(arg, fx.Node) else arg

        if node.op == "get_attr":
            const = _fetch(gm, str(node.target))
            return lambda env: (const, None)
        rule: Callable[..., Pair] | None
        source = node.args[0] if node.args else None
        # a fresh result (a folded convolution's or a sum's, never a view) that only this ReLU
        # reads can be overwritten
        owned = (
            isinstance(source, fx.Node)
            and source.op == "call_function"
            and len(source.users) == 1
            and _function_rule(source) in (_folded_conv, _add)
        )
        # a sum may overwrite its first operand when that is a folded convolution's fresh
        # result (primal and tangent) that only this sum reads
        conv_owned = owned and _function_rule(source) is _folded_conv  # type: ignore[arg-type]
        if node.op == "call_module":
            rule = _module_rule(modules[str(node.target)])
            if rule is _relu and owned:
                rule = _relu_inplace
            if rule is not None:
                return lambda env: rule(env[node.args[0]])  # type: ignore[misc]
        elif node.op == "call_function":
            rule = _function_rule(node)
            if rule is _relu and owned:
                rule = _relu_inplace
            if rule is _folded_conv:
                cache: dict = {}
                return lambda env: _folded_conv(
                    *(pair(a, env) for a in node.args),
                    cache=cache,
                    **{k: pair(v, env) if isinstance(v, fx.Node) else v for k, v in node.kwargs.items()},
                )
            if rule is _add and conv_owned:
                rule = _add_inplace
            if rule in (_add, _add_inplace, _relu, _relu_inplace):
                return lambda env: rule(*(pair(a, env) for a in node.args))  # type: ignore[misc]
            if rule is not None:
                return (
                    lambda env: rule(  # type: ignore[misc]
                        pair(node.args[0], env), *(plain(a, env) for a in node.args[1:]), **node.kwargs
                    )
                )
        elif node.op == "call_method":
            rule = _method_rule(node)
            if rule is not None:
                return lambda env: rule(pair(node.args[0], env), *(plain(a, env) for a in node.args[1:]))  # type: ignore[misc]
        raise NotImplementedError(f"no propagation rule for {node.op} {node.target}")

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        env: dict[fx.Node, Pair] = {self._input: (x, None)}  # type: ignore[dict-item]
        for node, step in self._steps:
            env[node] = step(env)
        logits, dlogits = env[self._output]
        if dlogits is None:
            return torch.zeros_like(logits)
        return dlogits - (torch.softmax(logits, -1) * dlogits).sum(-1, keepdim=True)


def rules_for(model: nn.Module) -> AllOnesRules | None:
    """The propagation rules of ``model`` (traced with fx unless it is a graph module), or None
    when it cannot be traced or a node has no rule (the caller then uses ``torch.func.jvp``)."""
    if not isinstance(model, fx.GraphModule):
        try:
            model = fx.symbolic_trace(model)
        except Exception:  # noqa: BLE001  (any tracing failure: the caller falls back to jvp)
            return None
    try:
        return AllOnesRules(model)
    except NotImplementedError:
        return None


def _fetch(gm: fx.GraphModule, target: str) -> Tensor:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
