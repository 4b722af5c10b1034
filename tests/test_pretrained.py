"""ImageNet-pretrained backbones (CUB-200 victims and clones): loading a torchvision weights file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from snakemake.utils import validate

from msdefense import pretrained
from msdefense.config import ConfigError, check_config
from msdefense.models import build_model
from msdefense.stages.requests import VictimRequest


@pytest.fixture(scope="module")
def resnet34_file(tmp_path_factory) -> Path:
    """A weights file in torchvision's format: the state dict of its resnet34, saved by torch.save."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet34_imagenet.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    return path


def test_backbone_is_loaded_and_the_head_is_new(resnet34_file: Path) -> None:
    state = torch.load(resnet34_file, weights_only=True)
    model = pretrained.load_backbone(
        build_model("resnet34_imagenet", 200), resnet34_file, arch="resnet34_imagenet"
    )
    own = model.state_dict()
    backbone = [k for k in state if not k.startswith("fc.")]
    assert len(backbone) > 100
    assert all(torch.equal(own[k], state[k]) for k in backbone)
    assert own["fc.weight"].shape == (200, 512)


def test_one_channel_stem_keeps_its_fresh_init(resnet34_file: Path) -> None:
    state = torch.load(resnet34_file, weights_only=True)
    model = pretrained.load_backbone(
        build_model("resnet34_imagenet", 10, 1), resnet34_file, arch="resnet34_imagenet"
    )
    own = model.state_dict()
    assert own["conv1.weight"].shape == (64, 1, 7, 7)
    assert torch.equal(own["layer4.2.conv2.weight"], state["layer4.2.conv2.weight"])


def test_missing_file_names_it_the_url_and_the_rule(tmp_path: Path) -> None:
    path = pretrained.weights_file(tmp_path, "resnet34_imagenet")
    with pytest.raises(FileNotFoundError) as err:
        pretrained.load_backbone(build_model("resnet34_imagenet", 200), path, arch="resnet34_imagenet")
    text = str(err.value)
    assert str(path) in text and "download.pytorch.org" in text and "snakemake" in text


def test_a_file_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="does not hold resnet50_imagenet's backbone"):
        pretrained.load_backbone(build_model("resnet50_imagenet", 200), path, arch="resnet50_imagenet")
    path.write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="not a readable torchvision state dict"):
        pretrained.load_backbone(build_model("resnet34_imagenet", 200), path, arch="resnet34_imagenet")


def test_offline_fetch_says_what_to_do_and_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    def offline(url: str, dst: str, hash_prefix=None, progress=True) -> None:
        Path(dst).write_bytes(b"partial")
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError) as err:
        pretrained.fetch_weights(tmp_path, "resnet34_imagenet")
    assert "resnet34-b627a593.pth" in str(err.value) and "save it as" in str(err.value)
    assert list((tmp_path / "weights").iterdir()) == []


def test_request_builds_its_model_from_the_weights(resnet34_file: Path) -> None:
    from msdefense.data import get_dataset_spec

    spec = get_dataset_spec("cub200")
    request = VictimRequest(data={}, seed=0, victim="v", victim_cfg={}, in_weights=[str(resnet34_file)])
    model = request.fresh_model("resnet34_imagenet", spec)
    state = torch.load(resnet34_file, weights_only=True)
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert VictimRequest(data={}, seed=0, victim="v", victim_cfg={}).weights is None


def test_pretrained_needs_an_architecture_with_imagenet_weights(default_config) -> None:
    config = default_config
    validate(config, str(Path(__file__).resolve().parents[1] / "config" / "schema.yaml"))
    config["victims"]["digits_lenet5"]["pretrained"] = True
    with pytest.raises(ConfigError, match=r"victims\.digits_lenet5\.pretrained: 'lenet5' has no ImageNet"):
        check_config(config)
    config["victims"]["digits_lenet5"]["pretrained"] = False
    config["knockoff"]["pretrained"] = True
    with pytest.raises(ConfigError, match=r"knockoff\.pretrained"):
        check_config(config)
