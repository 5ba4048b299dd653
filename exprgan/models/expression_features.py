"""A small expression feature network, trained offline, for the perceptual loss without ImageNet."""

from __future__ import annotations

import torch
from torch import nn


class ExpressionFeatures(nn.Module):
    """Four stride-2 conv-BN-ReLU stages and a linear expression head.

    Trained (offline, by :func:`exprgan.offline.train_classifier`) to recognise the
    expressions of a data set's real training faces, its stages' outputs describe a face's
    expression far more than its identity: the perceptual loss (Eq. 11) compares the
    expressions of ``I_c`` and ``I_b`` through them, as the paper's ImageNet VGG19 does on
    real photographs. :meth:`forward` returns the four stages' outputs (like
    :class:`~exprgan.losses.VGGFeatures`); :meth:`logits` the head's, for training.

    Args:
        num_classes: expressions of the training data.
        width: channels of the first stage (doubling each stage).
    """

    num_maps = 4  # feature maps :meth:`forward` returns

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        widths = [3] + [width * 2**k for k in range(4)]
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, 2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
            for cin, cout in zip(widths, widths[1:])
        )
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The four stages' outputs for images ``[N, 3, H, W]`` in ``[-1, 1]``."""
        taps, x = [], images
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        return taps

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Expression logits ``[N, num_classes]``."""
        return self.head(self.forward(images)[-1].mean((2, 3)))
