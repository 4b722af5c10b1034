"""PT2E (torchao) against today's FX int8 victims, on LeNet-5 and the digits: accuracy, size, latency.

The evidence of docs/quantization.md (issue 31, item 9). One fp32 LeNet-5 is trained for a few
seconds on the digits' training split; then, on one CPU thread:

- FX, today's path: ``msdefense.quantization.quantize_ptq`` for ``x86`` and ``qnnpack`` and
  ``quantize_qat`` for ``x86`` (one epoch), saved as the victim store writes them (safetensors +
  JSON layout) and rebuilt by ``rebuild_quantized``; the FX ``DeprecationWarning`` the calls let
  through is counted.
- PT2E: ``torch.export.export`` (batch dimension dynamic), torchao's ``prepare_pt2e`` /
  ``prepare_qat_pt2e`` / ``convert_pt2e`` with ``X86InductorQuantizer`` (and torchao's testing
  copy of ``XNNPACKQuantizer``), run in eager mode (the converted graph as it is) and, for x86,
  through ``torch.compile`` with inductor freezing; the operators each graph runs are listed, and
  the converted model is saved with ``torch.export.save`` (.pt2) and loaded back.

Reported: top-1 accuracy on the digits' test split and agreement with the fp32 model and with FX
x86, stored bytes, and milliseconds per call at batch 1 and 64 (medians over interleaved calls,
every model once per round, ratios against the fp32 model timed in the same rounds).

Needs torchao, which the package does not depend on: run it with a Python that sees the
package's .venv and torchao (docs/quantization.md says how). ``--help`` needs neither.

    .venv/bin/python benchmarks/pt2e_check.py --help
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import platform
import re
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import reduce
from typing import Any
from unittest import mock

FX_WARNING = "torch.ao.quantization is deprecated"
META = {"arch": "lenet5", "num_classes": "10", "in_channels": "1", "dataset": "digits"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/pt2e_check.json", help="where the JSON results go")
    parser.add_argument("--train-seconds", type=float, default=8.0, help="fp32 training time cap")
    parser.add_argument("--epochs", type=int, default=30, help="fp32 training epochs (at most)")
    parser.add_argument("--repeats", type=int, default=300, help="timed rounds per batch size")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--no-compile", action="store_true", help="skip PT2E + torch.compile")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


# ---------------------------------------------------------------- helpers


def nbytes(tensors: dict[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def predict(fn: Callable, x, batch: int = 64, pad: bool = False):
    """Top-1 labels of ``fn`` over ``x`` in batches (``pad``: every batch padded to ``batch``)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            n = len(chunk)
            if pad and n < batch:
                chunk = torch.cat([chunk, chunk.new_zeros(batch - n, *chunk.shape[1:])])
            out.append(fn(chunk)[:n].argmax(-1))
    return torch.cat(out)


def train_fp32(x, y, seconds: float, epochs: int, seed: int):
    import torch
    import torch.nn.functional as F

    from msdefense import build_model

    torch.manual_seed(seed)
    model = build_model("lenet5", 10, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    start, steps, done = time.perf_counter(), 0, 0
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        done += 1
        if time.perf_counter() - start > seconds:
            break
    return model.eval(), {"epochs": done, "steps": steps, "seconds": time.perf_counter() - start}


@contextmanager
def fx_warnings() -> Iterator[list]:
    """Record every warning of the block (FX's deprecation is counted from them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def count_fx_warnings(caught: list) -> int:
    return sum(issubclass(w.category, DeprecationWarning) and FX_WARNING in str(w.message) for w in caught)


@contextmanager
def module_capture() -> Iterator[None]:
    """Send the package's CPU fast paths (LeNet-5's conv3 as ``F.linear``, 2×2 pooling by reshaping)
    to the modules while exporting, as FX tracing does; a migration would have to do the same
    (``torch.compiler.is_exporting()``), else export records the fast path (see ``fast_path_capture``)."""
    import msdefense.models.point_conv as point_conv
    import msdefense.models.pooling as pooling

    with (
        mock.patch.object(point_conv, "fast_path", lambda *a: False),
        mock.patch.object(pooling, "fast_path", lambda *a: False),
    ):
        yield


def export(model, example, fast_paths: bool = False):
    import torch

    dims = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}}
    if fast_paths:
        return torch.export.export(model, (example,), dynamic_shapes=dims)
    with module_capture():
        return torch.export.export(model, (example,), dynamic_shapes=dims)


def graph_tensors(gm) -> dict[str, Any]:
    """The tensors the converted graph reads (``get_attr``), by name."""
    return {n.target: reduce(getattr, n.target.split("."), gm) for n in gm.graph.nodes if n.op == "get_attr"}


def graph_ops(gm) -> dict[str, int]:
    return dict(Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_function"))


def describe_graph(gm) -> dict[str, Any]:
    ops = graph_ops(gm)
    tensors = graph_tensors(gm)
    weights = {k: v for k, v in tensors.items() if v.dim() >= 2}
    qdq = sum(v for k, v in ops.items() if k.startswith("quantized_decomposed."))
    float_ops = sum(v for k, v in ops.items() if k in ("aten.conv2d.default", "aten.linear.default"))
    int8_kernels = sum(v for k, v in ops.items() if k.startswith(("onednn.", "quantized.")))
    literal_qparams = sum(
        1
        for n in gm.graph.nodes
        if n.op == "call_function"
        and str(n.target).startswith("quantized_decomposed.quantize_per_tensor")
        and isinstance(n.args[1], float)
    )
    return {
        "quantize_dequantize_nodes": qdq,
        "fp32_conv_linear_ops": float_ops,
        "int8_kernel_ops": int8_kernels,
        "weights_int8": sorted(k for k, v in weights.items() if str(v.dtype) == "torch.int8"),
        "weights_fp32": sorted(k for k, v in weights.items() if v.is_floating_point()),
        "graph_tensor_bytes": nbytes(tensors),
        "activation_qparams_as_graph_literals": literal_qparams,
        "ops": ops,
    }


def pt2_roundtrip(converted, example, x_check) -> dict[str, Any]:
    """``torch.export.save`` of the converted model, then ``torch.export.load``: bytes, whether any
    entry is pickled, and whether the loaded model answers identically."""
    import torch

    ep = export(converted, example, fast_paths=True)  # the converted graph has no package modules left
    unused = nbytes(ep.state_dict) + nbytes(ep.constants) - nbytes(graph_tensors(converted))
    pruned = prune_unused(copy.deepcopy(converted))
    buf = io.BytesIO()
    torch.export.save(export(pruned, example, fast_paths=True), buf)
    pruned_bytes = len(buf.getvalue())
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    data = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        configs = [n for n in names if n.endswith(".json") and ("weights" in n or "constants" in n)]
        pickled = sum(zf.read(n).count(b'"use_pickle": true') for n in configs)
    loaded = torch.export.load(io.BytesIO(data)).module()
    with torch.no_grad():
        same = bool(torch.equal(loaded(x_check), converted(x_check)))
    return {
        "pt2_bytes": len(data),
        "pt2_unused_tensor_bytes": unused,
        "pt2_bytes_unused_removed": pruned_bytes,
        "pt2_entries": len(names),
        "pickled_entries": pickled,
        "identical": same,
    }


def prune_unused(gm):
    """``gm`` without the parameters and buffers its graph no longer reads: ``convert_pt2e`` keeps the
    fp32 weights it replaced by int8 constants, and ``torch.export`` would save them."""
    used = set(graph_tensors(gm))
    for name in [k for k in gm.state_dict() if k not in used]:
        *path, attr = name.split(".")
        delattr(reduce(getattr, path, gm), attr)
    return gm


# ---------------------------------------------------------------- the flows


def fx_ptq(model, backend: str, calib, example, x_check) -> tuple[Any, dict[str, Any]]:
    import torch

    from msdefense.io import safetensors_bytes
    from msdefense.quantization import model_size_mb, quantize_ptq, quantized_state, rebuild_quantized

    t = time.perf_counter()
    with fx_warnings() as caught:
        victim = quantize_ptq(model, backend, calib, example)
        tensors, meta = quantized_state(victim)
        rebuilt = rebuild_quantized({**META, **meta}, tensors)
    seconds = time.perf_counter() - t
    same = bool(torch.equal(rebuilt(x_check), victim(x_check)))
    return victim, {
        "seconds": seconds,
        "size_mb": model_size_mb(victim),
        "file_bytes": len(safetensors_bytes(tensors, {**META, **meta})),
        "reload_identical": same,
        "fx_deprecation_warnings": count_fx_warnings(caught),
    }


def x86_quantizer(is_qat: bool = False):
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=is_qat))
    return quantizer


def xnnpack_quantizer():
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    return quantizer


def pt2e_ptq(model, quantizer, calib, example, fast_paths: bool = False):
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    t = time.perf_counter()
    captured = export(copy.deepcopy(model).eval(), example, fast_paths).module()
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for batch in calib:
            prepared(batch)
    converted = convert_pt2e(prepared)
    return converted, time.perf_counter() - t


def qat_loader(x, y, seed: int):
    import torch
    from torch.utils.data import TensorDataset

    from msdefense.training import make_loader

    return make_loader(
        TensorDataset(x, y), batch_size=64, device=torch.device("cpu"), shuffle=True, seed=seed
    )


def pt2e_qat(model, x, y, example, seed: int, epochs: int = 1):
    """The package's QAT recipe (SGD lr 1e-3, Nesterov 0.9, wd 5e-4, per-step cosine, batch 64,
    shuffled with ``seed``) on the PT2E fake-quantized graph."""
    import torch
    import torch.nn.functional as F
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    from msdefense.quantization.recipe import QAT_MOMENTUM, QAT_WEIGHT_DECAY
    from msdefense.schedules import cosine_schedule, sgd

    t = time.perf_counter()
    captured = export(copy.deepcopy(model).train(), example).module()
    prepared = prepare_qat_pt2e(captured, x86_quantizer(is_qat=True))
    loader = qat_loader(x, y, seed)
    opt = sgd(
        prepared.parameters(), lr=1e-3, momentum=QAT_MOMENTUM, nesterov=True, weight_decay=QAT_WEIGHT_DECAY
    )
    sched = cosine_schedule(opt, epochs * len(loader))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            move_exported_model_to_train(prepared)
            for xb, yb in loader:
                loss = F.cross_entropy(prepared(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    move_exported_model_to_eval(prepared)
    reference = dict(model.named_parameters())
    change = max(
        float((p.detach() - reference[k].detach()).abs().max())
        for k, p in prepared.named_parameters()
        if k in reference and p.dim() >= 2
    )
    return convert_pt2e(prepared), time.perf_counter() - t, change


def fx_qat(model, x, y, example, seed: int):
    from torch.utils.data import TensorDataset

    from msdefense.quantization import QuantRecipe, model_size_mb, quantize_qat

    recipe = QuantRecipe(
        mode="qat", backend="x86", calibration_images=512, qat_epochs=1, qat_lr=1e-3, qat_batch_size=64
    )
    t = time.perf_counter()
    with fx_warnings() as caught:
        victim, info = quantize_qat(
            model, "x86", TensorDataset(x, y), recipe, seed=seed, example_input=example
        )
    return victim, {
        "seconds": time.perf_counter() - t,
        "size_mb": model_size_mb(victim),
        "weight_max_abs_change": info["weight_max_abs_change"],
        "fx_deprecation_warnings": count_fx_warnings(caught),
    }


def compile_x86(converted, x_b64):
    """``torch.compile`` (inductor, freezing on) of the PT2E x86 graph, specialised per batch size;
    returns the compiled callable, compile seconds and the operators of the generated code."""
    import torch
    import torch._inductor.config as inductor_config
    from torch._inductor.utils import run_and_get_code

    inductor_config.freezing = True
    compiled = torch.compile(converted, dynamic=False)
    t = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # inductor's own copy-construct notice
        _, codes = run_and_get_code(compiled, x_b64)
        first = time.perf_counter() - t
        compiled(x_b64[:1])
    total = time.perf_counter() - t
    kernels = sorted(set(re.findall(r"torch\.ops\.[a-z_]+\.[A-Za-z_0-9]+", "\n".join(codes))))
    return compiled, {"compile_seconds_b64": first, "compile_seconds_b64_and_b1": total, "ops": kernels}


# ---------------------------------------------------------------- timing


def time_models(models: dict[str, Callable], batch: int, repeats: int, warmup: int, seed: int):
    """Median and IQR milliseconds per call of every model, each called once per round (in a
    rotating order), and the ratio of medians against ``fp32``."""
    import numpy as np
    import torch

    x = torch.randn(batch, 1, 32, 32, generator=torch.Generator().manual_seed(seed))
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.no_grad():
        for r in range(warmup + repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            for n in order:
                t = time.perf_counter()
                models[n](x)
                dt = time.perf_counter() - t
                if r >= warmup:
                    times[n].append(dt)
    base = float(np.median(times["fp32"]))
    rows = {}
    for n in names:
        a = np.array(times[n]) * 1000
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        rows[n] = {
            "ms_median": float(med),
            "ms_iqr": float(q3 - q1),
            "ratio_vs_fp32": float(med / 1000 / base),
        }
    return rows


# ---------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(1)
    try:
        import torchao
    except ImportError:
        raise SystemExit(
            "pt2e_check needs torchao (not a package dependency): docs/quantization.md"
        ) from None

    from msdefense.data.digits import digits_tensors, split_indices
    from msdefense.training import prepare_model

    images, labels = digits_tensors()
    tr, te = torch.from_numpy(split_indices("train")), torch.from_numpy(split_indices("test"))
    x_train, y_train, x_test, y_test = images[tr], labels[tr], images[te], labels[te]
    calib = list(x_train[:512].split(64))  # the default recipe's calibration_images
    example = torch.zeros(1, 1, 32, 32)
    example2 = torch.zeros(2, 1, 32, 32)  # export specialises a batch of 1; the batch stays dynamic
    x_check = x_test[:64]
    with open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    env = {
        "torch": torch.__version__,
        "torchao": torchao.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "quantized_engines": torch.backends.quantized.supported_engines,
    }
    print(json.dumps(env))

    model, training = train_fp32(x_train, y_train, args.train_seconds, args.epochs, args.seed)
    fp32_pred = predict(model, x_test)
    results: dict[str, Any] = {"env": env, "fp32_training": training, "n_test": len(y_test), "models": {}}

    preds = {}

    def record(name: str, pred, **extra: Any) -> None:
        preds[name] = pred
        results["models"][name] = {
            "test_acc": float((pred == y_test).float().mean()),
            "agree_fp32": float((pred == fp32_pred).float().mean()),
            **extra,
        }

    from msdefense.quantization import model_size_mb

    record("fp32", fp32_pred, size_mb=model_size_mb(model))

    fx = {}
    for backend in ("x86", "qnnpack"):
        fx[backend], info = fx_ptq(model, backend, calib, example, x_check)
        record(f"fx_ptq_{backend}", predict(fx[backend], x_test), **info)

    pt2e_x86, seconds = pt2e_ptq(model, x86_quantizer(), calib, example2)
    record(
        "pt2e_ptq_x86_eager",
        predict(pt2e_x86, x_test),
        seconds=seconds,
        graph=describe_graph(pt2e_x86),
        pt2=pt2_roundtrip(pt2e_x86, example2, x_check),
    )
    as_is, seconds = pt2e_ptq(model, x86_quantizer(), calib, example2, fast_paths=True)
    record("pt2e_ptq_x86_eager_fast_path_capture", predict(as_is, x_test), graph=describe_graph(as_is))
    pt2e_xnn, seconds = pt2e_ptq(model, xnnpack_quantizer(), calib, example2)
    record(
        "pt2e_ptq_xnnpack_eager", predict(pt2e_xnn, x_test), seconds=seconds, graph=describe_graph(pt2e_xnn)
    )

    fx_qat_victim, info = fx_qat(model, x_train, y_train, example, args.seed)
    record("fx_qat_x86", predict(fx_qat_victim, x_test), **info)
    pt2e_qat_x86, seconds, change = pt2e_qat(model, x_train, y_train, example2, args.seed)
    record(
        "pt2e_qat_x86_eager",
        predict(pt2e_qat_x86, x_test),
        seconds=seconds,
        weight_max_abs_change=change,
        graph=describe_graph(pt2e_qat_x86),
    )

    fp32_timed = prepare_model(copy.deepcopy(model), "cpu").eval()  # the layout victims run in
    timed: dict[str, Callable] = {
        "fp32": fp32_timed,
        "fx_ptq_x86": fx["x86"],
        "fx_ptq_qnnpack": fx["qnnpack"],
        "pt2e_ptq_x86_eager": pt2e_x86,
        "pt2e_ptq_xnnpack_eager": pt2e_xnn,
    }
    if not args.no_compile:
        compiled, info = compile_x86(pt2e_x86, x_test[:64].contiguous())
        record("pt2e_ptq_x86_compiled", predict(compiled, x_test, pad=True), **info)
        timed["pt2e_ptq_x86_compiled"] = compiled

    for name, pred in preds.items():
        results["models"][name]["agree_fx_ptq_x86"] = float((pred == preds["fx_ptq_x86"]).float().mean())

    results["latency"] = {
        str(b): time_models(timed, b, args.repeats, args.warmup, args.seed + b) for b in (1, 64)
    }
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)

    print(f"fp32 training: {training}")
    print(f"{'model':40s} {'acc':>7s} {'agree':>7s} {'weights':>10s}  (agree: with fp32, top-1)")
    for name, row in results["models"].items():
        size = row.get("size_mb") or row.get("graph", {}).get("graph_tensor_bytes", 0) / 1e6
        shown = f"{size:10.4f} MB" if size else "  (as eager)"
        print(f"{name:40s} {row['test_acc']:7.4f} {row['agree_fp32']:7.4f} {shown}")
    for b, rows in results["latency"].items():
        for name, row in rows.items():
            print(
                f"batch {b:>2s} {name:28s} {row['ms_median']:8.3f} ms/call (IQR {row['ms_iqr']:.3f})"
                f"  x{row['ratio_vs_fp32']:.2f} of fp32"
            )
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
