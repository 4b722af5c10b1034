"""Stages of ``rules/victims.smk``: train a victim, quantize one, and build a MISLEADER ensemble.

Each victim kind (fp32, int8, ensemble) ends in the victim store (:mod:`msdefense.victims`) at
the same path, so every later stage reads any of them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from .. import layout
from ..io import save_csv
from ..record_types import EnsembleRecord, QuantizedVictimRecord, VictimRecord
from ..records import read_record
from ..seeding import derive_seed
from ..training import SGDRecipe, accuracy, dataset_labels, predict_probs, train_classifier
from ..victims import VictimInfo, read_classifier, read_victim, save_classifier, save_victim
from .context import stage, write_record
from .requests import ModelOutputs, VictimData, VictimRequest


@dataclass(frozen=True, kw_only=True)
class TrainVictimRequest(VictimRequest, ModelOutputs):
    out_history: str


def train_victim(request: TrainVictimRequest) -> dict[str, Any]:
    """Train a victim from scratch with its ``train`` recipe (SGD + per-step cosine; docs/methods.md);
    write its weights, per-epoch history and metrics."""
    r, cfg = request, request.victim_cfg
    vseed = derive_seed(r.seed, "victim", r.victim)
    with stage(r.device, vseed) as ctx:
        data = VictimData(cfg["dataset"], r.data)
        train = data.train(augment=True)
        evals = {s: data.split(s) for s in ("val", "test") if s in data.spec.splits}
        model = r.fresh_model(cfg["arch"], data.spec)
        recipe = SGDRecipe.from_config(cfg["train"])
        history = train_classifier(
            model, train, evals, recipe, device=ctx.device, seed=vseed, desc=f"victim {r.victim}"
        )
        save_csv(history, r.out_history)
        save_classifier(model, r.out_model, arch=cfg["arch"], dataset=cfg["dataset"])
        metrics = ctx.record(
            **VictimRecord(
                victim=r.victim,
                dataset=cfg["dataset"],
                arch=cfg["arch"],
                test_acc=history[-1]["test_acc"],
                val_acc=history[-1].get("val_acc"),
                train_size=len(train),
                seed=r.seed,
                stream_seed=vseed,
            ).fields()
        )
    return write_record(metrics, r.out_metrics)


@dataclass(frozen=True, kw_only=True)
class QuantizeVictimRequest(VictimRequest, ModelOutputs):
    in_source: str


def quantize_victim(request: QuantizeVictimRequest) -> dict[str, Any]:
    """An int8 copy of a trained fp32 victim (Khaled et al. 2023, quantized victims; docs/methods.md):
    PTQ calibrated on ``calibration_images`` un-augmented training images, or QAT fine-tuned for
    ``qat_epochs``, with the FX graph-mode engine ``backend`` (x86 = server, qnnpack = edge)."""
    from ..quantization import QuantRecipe, model_size_mb, quantize_ptq, quantize_qat

    r, cfg = request, request.victim_cfg
    qcfg = cfg["quantize"]
    recipe = QuantRecipe.from_config(qcfg)
    qseed = derive_seed(r.seed, "quantize", r.victim)
    with stage(r.device, qseed) as ctx:
        data = VictimData(cfg["dataset"], r.data)
        spec = data.spec
        fp32, source = read_victim(r.in_source, "cpu", kinds=("fp32",), pattern=layout.VICTIM_MODEL)
        example = torch.zeros(1, *data.image_shape())
        info: dict[str, Any] = {}
        if recipe.mode == "ptq":
            plain = data.train(augment=False)
            order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(qseed))
            calib = Subset(plain, order[: recipe.calibration_images].tolist())
            batches = (x for x, _ in DataLoader(calib, batch_size=64, shuffle=False))
            qmodel = quantize_ptq(fp32, recipe.backend, batches, example)
        else:
            train = data.train(augment=True)
            qmodel, info = quantize_qat(
                fp32, recipe.backend, train, recipe, seed=qseed, example_input=example, device=ctx.device
            )
        test = data.test()
        labels = dataset_labels(test)
        q_probs = predict_probs(qmodel, test, torch.device("cpu"))
        f_probs = predict_probs(fp32, test, torch.device("cpu"))
        save_victim(
            qmodel,
            r.out_model,
            VictimInfo(
                kind="int8",
                arch=source.arch,
                dataset=cfg["dataset"],
                num_classes=spec.num_classes,
                in_channels=spec.in_channels,
                source=qcfg["source"],
                extra=recipe.to_metadata(),
            ),
        )
        metrics = ctx.record(
            **QuantizedVictimRecord(
                victim=r.victim,
                dataset=cfg["dataset"],
                arch=source.arch,
                source=qcfg["source"],
                precision="int8",
                mode=recipe.mode,
                backend=recipe.backend,
                test_acc=accuracy(q_probs, labels),
                source_test_acc=accuracy(f_probs, labels),
                agreement_with_source=float((q_probs.argmax(-1) == f_probs.argmax(-1)).double().mean()),
                size_mb=model_size_mb(qmodel),
                source_size_mb=model_size_mb(fp32),
                qat_weight_max_abs_change=info.get("weight_max_abs_change"),
                seed=r.seed,
                stream_seed=qseed,
            ).fields()
        )
    return write_record(metrics, r.out_metrics)


@dataclass(frozen=True, kw_only=True)
class MisleaderMemberRequest(VictimRequest, ModelOutputs):
    member: str
    in_teacher: str
    out_history: str


def train_misleader_member(request: MisleaderMemberRequest) -> dict[str, Any]:
    """One member of a MISLEADER ensemble (Cheng et al. 2025; docs/methods.md): distilled from the
    teacher victim while pushed away from an inner attacker, selected on the validation split."""
    from ..misleader import MemberRecipe, MemberSpec, train_member

    r, cfg = request, request.victim_cfg
    index = int(r.member)
    member_spec = MemberSpec.from_config(cfg["misleader"]["members"][index])
    recipe = MemberRecipe.from_config(cfg["misleader"]["train"])
    with stage(r.device) as ctx:
        data = VictimData(cfg["dataset"], r.data)
        teacher = read_classifier(r.in_teacher, ctx.device, pattern=layout.VICTIM_MODEL)
        train, val = data.train(augment=True), data.val()
        mseed = derive_seed(r.seed, "misleader", r.victim, str(index))
        member, history, info = train_member(
            teacher,
            member_spec,
            recipe,
            train,
            val,
            num_classes=data.spec.num_classes,
            in_channels=data.spec.in_channels,
            device=ctx.device,
            seed=mseed,
        )
        save_csv(history, r.out_history)
        save_classifier(member, r.out_model, arch=member_spec.arch, dataset=cfg["dataset"])
        test = data.test()
        metrics = ctx.record(
            victim=r.victim,
            member=index,
            arch=member_spec.arch,
            lam=member_spec.lam,
            T=member_spec.temperature,
            alpha=member_spec.alpha,
            test_acc=accuracy(predict_probs(member, test, ctx.device), dataset_labels(test)),
            best_val_acc=info.get("best_val_acc"),
            best_epoch=info.get("best_epoch"),
            seed=r.seed,
            stream_seed=mseed,
        )
    return write_record(metrics, r.out_metrics)


@dataclass(frozen=True, kw_only=True)
class BuildEnsembleRequest(VictimRequest, ModelOutputs):
    in_members: Sequence[str]
    in_teacher_metrics: str


def build_ensemble(request: BuildEnsembleRequest) -> dict[str, Any]:
    """The MISLEADER victim: soft voting over the members' softmax outputs."""
    from ..misleader import Ensemble

    r, cfg = request, request.victim_cfg
    with stage(r.device) as ctx:
        members = [read_classifier(p, ctx.device, pattern=layout.MEMBER_MODEL) for p in r.in_members]
        archs = tuple(m["arch"] for m in cfg["misleader"]["members"])
        ensemble = Ensemble(members).eval()
        data = VictimData(cfg["dataset"], r.data)
        test = data.test()
        labels = dataset_labels(test)
        member_acc = [accuracy(predict_probs(m, test, ctx.device), labels) for m in members]
        acc = accuracy(predict_probs(ensemble, test, ctx.device), labels)
        teacher = read_record(r.in_teacher_metrics, "victim", require=("test_acc",))
        arch = cfg.get("arch", archs[0])
        info = VictimInfo.of_dataset(
            kind="ensemble",
            arch=arch,
            dataset=cfg["dataset"],
            source=cfg["misleader"]["teacher"],
            member_archs=archs,
        )
        save_victim(ensemble, r.out_model, info)
        metrics = ctx.record(
            **EnsembleRecord(
                victim=r.victim,
                dataset=cfg["dataset"],
                arch=arch,
                kind="misleader",
                members=list(archs),
                member_test_acc=member_acc,
                test_acc=acc,
                teacher=cfg["misleader"]["teacher"],
                teacher_test_acc=teacher["test_acc"],
                seed=r.seed,
            ).fields()
        )
    return write_record(metrics, r.out_metrics)
