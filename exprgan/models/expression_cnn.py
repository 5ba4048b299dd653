"""A small expression CNN, trained offline: the oracle that judges transfers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ExpressionCNN(nn.Module):
    """Conv-BN-ReLU stages (a stride-2 stage halves the side), global average pool, linear head.

    Trained (offline, by :func:`exprgan.offline.train_classifier`) to recognise the expressions
    of a data set's real training faces: the oracle of :mod:`exprgan.evaluation.oracle`.

    Args:
        num_classes: expressions to recognise.
        width: channels of the first stage; each later stride-2 stage doubles them.
        strides: one stage each (1: the side is kept).
    """

    def __init__(self, num_classes: int, width: int = 32, strides: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        widths, channels = [3], width
        for k, stride in enumerate(strides):
            channels *= 2 if k and stride == 2 else 1
            widths.append(channels)
        stages = [
            nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
            for cin, cout, stride in zip(widths, widths[1:], strides)
        ]
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Expression logits ``[N, num_classes]`` of images ``[N, 3, H, W]`` in ``[-1, 1]``."""
        return self.head(self.stages(images).mean((2, 3)))
