"""C: CNN features fused with the generator's expression representation (Eq. 8, Table I)."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from exprgan.models.backbones import BackboneName, ImageNetNormalize, build_backbone


class ExpressionClassifier(nn.Module):
    """``(image [N, 3, H, W], R [N, 512, H/32, W/32]) -> logits [N, n]``.

    Backbone features at stride 32 (VGG19 pool5 in the paper) are concatenated with
    ``R = G_enc(I)`` of the same image, fused by a 1x1 conv ("FC(512)"), pooled to 7x7 and
    classified by ``Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
    Linear(4096, n)``. With ``representation_channels=0`` it reads the backbone only (the
    paper's No_ExpR ablation). Images are in ``[-1, 1]``; the ImageNet normalisation the
    backbone expects is applied inside.

    Args:
        num_expressions: ``n``, the number of classes.
        backbone: ``vgg19`` (paper), ``vgg19_bn`` (authors' release), ``resnet50``
            (TwoStage_res50), ``resnet18`` or ``mobilenet_v3_small`` (light, for fast CPU
            runs).
        pretrained: load the backbone's ImageNet weights.
        weights_path: local file with the backbone's torchvision state dict; implies
            ``pretrained`` and never downloads.
        representation_channels: channels of R (512); 0 disables the fusion.
        fused_channels: output channels of the 1x1 fusion conv (512).
        hidden_features: width of the two hidden linear layers (4096).
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self,
        num_expressions: int,
        backbone: BackboneName = "vgg19",
        pretrained: bool = False,
        weights_path: str | os.PathLike[str] | None = None,
        representation_channels: int = 512,
        fused_channels: int = 512,
        hidden_features: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_expressions = num_expressions
        self.representation_channels = representation_channels
        self.normalize = ImageNetNormalize()
        self.backbone, backbone_channels = build_backbone(backbone, pretrained, weights_path)
        self.fuse = nn.Conv2d(backbone_channels + representation_channels, fused_channels, kernel_size=1)
        self.head = nn.Sequential(
            nn.Linear(fused_channels * 7 * 7, hidden_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, hidden_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, num_expressions),
        )

    @property
    def uses_representation(self) -> bool:
        """Whether the classifier reads G_enc's representation (off for No_ExpR)."""
        return self.representation_channels > 0

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features ``[N, C, H/32, W/32]`` of images in ``[-1, 1]``."""
        return self.backbone(self.normalize(images))

    def forward_head(self, features: torch.Tensor, representation: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[N, n]`` from backbone features fused with ``R = G_enc(I)`` of the same images."""
        if self.uses_representation:
            if representation is None:
                raise ValueError("this classifier fuses G_enc's representation: pass representation=G_enc(images)")
            expected = (features.shape[0], self.representation_channels, *features.shape[-2:])
            if representation.shape != expected:
                raise ValueError(f"representation must be {list(expected)}, got {tuple(representation.shape)}")
            features = torch.cat([features, representation], dim=1)
        fused = self.fuse(features)  # [N, fused, h, w]
        h, w = fused.shape[-2:]
        # the 7x7 average pool then the first linear layer, as one contraction that opt_einsum orders:
        # a map smaller than 7x7 (2x2 at 64 px) is never blown up to 7x7 (same function, fewer FLOPs)
        pool = F.adaptive_avg_pool2d(torch.eye(h * w, dtype=fused.dtype, device=fused.device).view(-1, 1, h, w), 7)
        first = self.head[0]
        weight = first.weight.view(first.out_features, fused.shape[1], 49)
        hidden = torch.einsum("ncp,pk,ock->no", fused.flatten(2), pool.view(h * w, 49), weight) + first.bias
        return self.head[1:](hidden)  # [N, n]

    def forward(self, images: torch.Tensor, representation: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(images), representation)
