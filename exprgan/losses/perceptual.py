"""Perceptual loss (Eq. 11) on a frozen VGG19."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from exprgan.models.backbones import ImageNetNormalize, torchvision_model

# indices of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19().features
VGG19_RELU_X_1: tuple[int, ...] = (1, 6, 11, 20, 29)
LAYER_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def perceptual_loss(
    features_x: Sequence[torch.Tensor], features_y: Sequence[torch.Tensor], layer_weights: Sequence[float]
) -> torch.Tensor:
    """``sum_l w_l * mean |F_l(x) - F_l(y)|`` over matching feature maps."""
    if not len(features_x) == len(features_y) == len(layer_weights):
        raise ValueError(
            f"got {len(features_x)} and {len(features_y)} feature maps for {len(layer_weights)} layer weights"
        )
    return sum(w * F.l1_loss(x, y) for w, x, y in zip(layer_weights, features_x, features_y))


class VGGFeatures(nn.Module):
    """Frozen VGG19 returning the activations of ``layers`` (relu1_1 .. relu5_1).

    Its parameters never require gradients and it stays in eval mode whatever ``train()``
    is called with, so it is never updated and never lands in an optimiser; gradients
    still flow through it to the images.

    Args:
        pretrained: load ImageNet weights (the paper's loss; random weights are for tests
            and offline demos only).
        weights_path: local torchvision ``vgg19`` state dict; never downloads.
        layers: indices into ``vgg19().features`` whose outputs are returned.
    """

    def __init__(
        self,
        pretrained: bool = True,
        weights_path: str | os.PathLike[str] | None = None,
        layers: Sequence[int] = VGG19_RELU_X_1,
    ) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.normalize = ImageNetNormalize()
        self.features = torchvision_model("vgg19", pretrained, weights_path).features[: max(self.layers) + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layers:
                taps.append(x)
        return taps


class PerceptualLoss(nn.Module):
    """Eq. 11, ``L_per``: ``P(I_a, I_d) + P(I_b, I_c)`` with ``P`` = :func:`perceptual_loss`.

    Each face is compared with the *other* face of the pair after transfer: I_d has I_b's
    identity and I_a's expression. The real faces go through the network without a graph
    (no gradient can reach them), the generated ones with one. The network is frozen: its
    parameters never require gradients and it stays in eval mode.

    Args:
        pretrained: see :class:`VGGFeatures`.
        weights_path: see :class:`VGGFeatures`.
        layer_weights: weight of each layer, relu1_1 first (1/32, 1/16, 1/8, 1/4, 1). A
            shorter sequence uses only the first layers, and runs only the VGG blocks they
            need (e.g. ``(0.25, 0.5, 1)``: relu1_1 .. relu3_1, a cheap CPU setting).
    """

    def __init__(
        self,
        pretrained: bool = True,
        weights_path: str | os.PathLike[str] | None = None,
        layer_weights: Sequence[float] = LAYER_WEIGHTS,
    ) -> None:
        super().__init__()
        if not 1 <= len(layer_weights) <= len(VGG19_RELU_X_1):
            raise ValueError(f"layer_weights needs 1 to {len(VGG19_RELU_X_1)} weights, got {len(layer_weights)}")
        self.network = VGGFeatures(pretrained, weights_path, layers=VGG19_RELU_X_1[: len(layer_weights)])
        self.layer_weights = tuple(layer_weights)

    def forward(
        self, images_a: torch.Tensor, images_b: torch.Tensor, image_c: torch.Tensor, image_d: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():  # real faces are data and the network is frozen: their features are constants
            f_a, f_b = zip(*(f.chunk(2) for f in self.network(torch.cat([images_a, images_b]))))
        f_c, f_d = zip(*(f.chunk(2) for f in self.network(torch.cat([image_c, image_d]))))
        return perceptual_loss(f_a, f_d, self.layer_weights) + perceptual_loss(f_b, f_c, self.layer_weights)
