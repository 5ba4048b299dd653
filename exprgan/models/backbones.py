"""Image feature extractors for the classifier and the perceptual loss."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torchvision import models

from exprgan.models.pretrained import load_pretrained

BackboneName = Literal["vgg19", "vgg19_bn", "resnet50", "resnet18", "mobilenet_v3_small"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BUILDERS: dict[str, tuple[Callable[..., nn.Module], models.WeightsEnum]] = {
    "vgg19": (models.vgg19, models.VGG19_Weights.IMAGENET1K_V1),
    "vgg19_bn": (models.vgg19_bn, models.VGG19_BN_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "mobilenet_v3_small": (models.mobilenet_v3_small, models.MobileNet_V3_Small_Weights.IMAGENET1K_V1),
}


class ImageNetNormalize(nn.Module):
    """Map images from the library's ``[-1, 1]`` to ImageNet's mean/std normalisation."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return ((images + 1.0) / 2.0 - self.mean) / self.std


def torchvision_model(
    name: BackboneName, pretrained: bool = False, weights_path: str | os.PathLike[str] | None = None
) -> nn.Module:
    """A torchvision model (VGGs: their ``features`` only), randomly initialised or with its ImageNet weights."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_BUILDERS)}")
    build, weights = _BUILDERS[name]
    if name.startswith("vgg"):  # only the convolutional features are used: skip building the head
        model = nn.Module()
        model.features = models.vgg.make_layers(models.vgg.cfgs["E"], batch_norm=name.endswith("_bn"))
        for conv in (m for m in model.features if isinstance(m, nn.Conv2d)):  # torchvision's VGG init
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
    else:
        model = build(weights=None)
    if pretrained or weights_path is not None:
        load_pretrained(model, weights, weights_path)
    return model


def build_backbone(
    name: BackboneName, pretrained: bool = False, weights_path: str | os.PathLike[str] | None = None
) -> tuple[nn.Module, int]:
    """Convolutional features down to stride 32: ``[N, 3, H, W] -> [N, C, H/32, W/32]``.

    VGG models give their ``features`` through pool5 (C = 512); ResNets their stem and four
    stages (C = 2048 for resnet50, 512 for resnet18); MobileNetV3-Small its ``features``
    (C = 576; for CPU runs: a 30th of resnet18's multiply-adds, half its time on 2 CPU
    cores), its weights channels-last: its depthwise convolutions run 2-6x faster so (oneDNN,
    cuDNN), and the whole backbone 17% faster on a CPU. Inputs are ImageNet-normalised.

    Returns:
        The feature module and its output channels ``C``.
    """
    model = torchvision_model(name, pretrained, weights_path)
    if name.startswith("vgg"):
        return model.features, 512
    if name.startswith("mobilenet"):
        return model.features.to(memory_format=torch.channels_last), model.features[-1].out_channels
    stages = [model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4]
    return nn.Sequential(*stages), model.fc.in_features
