"""Stages of the defenses' auxiliary models (``rules/defenses.smk``): the misinformation model of
AdaptiveMisinformation and the surrogates of GRAD and MAD."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import layout
from ..seeding import derive_seed, seed_everything
from ..training import SGDRecipe, accuracy, dataset_labels, distill, predict_probs, train_classifier
from ..victims import read_victim, save_classifier
from .context import stage, write_record
from .requests import ModelOutputs, VictimData, VictimRequest


@dataclass(frozen=True, kw_only=True)
class MisinformationRequest(VictimRequest, ModelOutputs):
    recipe: Mapping[str, Any]


def train_misinformation(request: MisinformationRequest) -> dict[str, Any]:
    """The misinformation model of AdaptiveMisinformation (Kariyappa & Qureshi, CVPR 2020;
    docs/methods.md): the victim's architecture trained on the victim's training data to put *low*
    probability on the true class."""
    from ..defenses.adaptive_misinformation import misinformation_loss

    r, cfg = request, request.victim_cfg
    mseed = derive_seed(r.seed, "misinformation", r.victim)
    with stage(r.device, mseed) as ctx:
        data = VictimData(cfg["dataset"], r.data)
        train = data.train(augment=True)
        test = data.test()
        model = r.fresh_model(cfg["arch"], data.spec)
        recipe = SGDRecipe.from_config(r.recipe)
        history = train_classifier(
            model,
            train,
            {"test": test},
            recipe,
            device=ctx.device,
            seed=mseed,
            desc=f"misinformation {r.victim}",
            loss_fn=misinformation_loss,
        )
        save_classifier(model, r.out_model, arch=cfg["arch"], dataset=cfg["dataset"])
        metrics = ctx.record(
            victim=r.victim,
            test_acc=history[-1]["test_acc"],
            epochs=recipe.epochs,
            seed=r.seed,
            stream_seed=mseed,
        )
    return write_record(metrics, r.out_metrics)


@dataclass(frozen=True, kw_only=True)
class SurrogateRequest(VictimRequest, ModelOutputs):
    transfer: str
    epochs: str
    transfer_cfg: Mapping[str, Any]
    recipe: Mapping[str, Any]
    batch_size: int
    in_victim: str


def train_surrogate(request: SurrogateRequest) -> dict[str, Any]:
    """A defender surrogate for GRAD / MAD: the victim's architecture distilled on the transfer set
    from the victim's clean posteriors, stopped after ``epochs`` epochs of the ``recipe``'s cosine
    schedule (0 = untrained; docs/methods.md)."""
    r, cfg = request, request.victim_cfg
    stop_after = int(r.epochs)
    sseed = derive_seed(r.seed, "surrogate", r.victim, r.transfer)
    with stage(r.device) as ctx:
        model_v, _ = read_victim(r.in_victim, ctx.device, pattern=layout.VICTIM_MODEL)
        data = VictimData(cfg["dataset"], r.data)
        seed_everything(sseed)  # after loading the victim: building a model draws from the RNG
        plain = data.transfer(r.transfer_cfg, augment=False)
        targets = predict_probs(model_v, plain, ctx.device, r.batch_size)
        train = data.transfer(r.transfer_cfg, augment=True)
        model = r.fresh_model(cfg["arch"], data.spec)
        recipe = SGDRecipe.from_config(r.recipe)
        desc = f"surrogate {r.victim}/{r.transfer} e{stop_after}"
        history = distill(
            model, train, targets, recipe, device=ctx.device, seed=sseed, desc=desc, stop_after=stop_after
        )
        save_classifier(model, r.out_model, arch=cfg["arch"], dataset=cfg["dataset"])
        test = data.test()
        metrics = ctx.record(
            victim=r.victim,
            transfer=r.transfer,
            stop_after_epochs=stop_after,
            schedule_epochs=recipe.epochs,
            test_acc=accuracy(predict_probs(model, test, ctx.device), dataset_labels(test)),
            final_train_loss=history[-1]["train_loss"] if history else None,
            seed=r.seed,
            stream_seed=sseed,
        )
    return write_record(metrics, r.out_metrics)
