"""Pretrained weights: explicit files, clear offline errors, never a download."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torchvision.models import WeightsEnum, resnet18

from exprgan.losses import PerceptualLoss
from exprgan.models import ExpressionClassifier, PretrainedWeightsError


def test_weights_path_loads_that_file(tmp_path) -> None:
    reference = resnet18()
    path = tmp_path / "resnet18-weights.pth"
    torch.save(reference.state_dict(), path)
    classifier = ExpressionClassifier(7, backbone="resnet18", weights_path=path)
    assert torch.equal(classifier.backbone[0].weight, reference.conv1.weight)
    assert torch.equal(classifier.backbone[7][1].conv2.weight, reference.layer4[1].conv2.weight)


def test_missing_weights_file_is_named(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(PretrainedWeightsError, match="vgg19.pth"):
        ExpressionClassifier(7, backbone="vgg19", weights_path=missing)


def test_mismatched_weights_file_is_reported(tmp_path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"foo": torch.zeros(1)}}, path)
    with pytest.raises(PretrainedWeightsError, match="does not match"):
        ExpressionClassifier(7, backbone="resnet18", weights_path=path)


def test_offline_without_cached_weights_names_the_expected_file(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(PretrainedWeightsError, match=r"vgg19-dcbb9e9d\.pth.*weights_path"):
        PerceptualLoss(pretrained=True)
    with pytest.raises(PretrainedWeightsError, match=r"resnet18-f37072fd\.pth"):
        ExpressionClassifier(7, backbone="resnet18", pretrained=True)
