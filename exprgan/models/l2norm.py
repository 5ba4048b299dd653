"""The paper's l2-N layer (ELEGANT's pixel-wise l2 normalisation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class L2Norm(nn.Module):
    """L2-normalise each pixel's channel vector, then apply one scalar gain and bias.

    Unlike batch or instance norm there are no per-channel statistics and no running
    buffers: ``y = gain * x / ||x||_2 + bias`` with the norm taken over ``dim=1``, and
    ``gain`` (init 1) and ``bias`` (init 0) are single learnable scalars for the layer.
    The output of a sample never depends on the rest of its batch.

    Args:
        eps: lower bound on the norm, so an all-zero pixel stays finite.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> same
        return self.gain * F.normalize(x, p=2.0, dim=1, eps=self.eps) + self.bias
