"""G_enc: five stride-2 conv blocks from an image to the expression representation R."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from exprgan.models.l2norm import L2Norm

ENCODER_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)


def conv_block(in_channels: int, out_channels: int, negative_slope: float = 0.2) -> nn.Sequential:
    """Conv(d, k3, s2, p1) -> l2-N -> LeakyReLU: halves the spatial size (Table I)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
        L2Norm(),
        nn.LeakyReLU(negative_slope),
    )


class Encoder(nn.Module):
    """G_enc of Table I: ``[N, 3, H, W] -> R: [N, 512, H/32, W/32]``.

    ``forward_features`` also returns the output of every block, which the decoder adds
    as U-Net skips. ``H`` and ``W`` must be multiples of ``2 ** len(channels)`` (32).

    Args:
        in_channels: image channels.
        channels: output channels of the stride-2 blocks (paper: 64, 128, 256, 512, 512).
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = ENCODER_CHANNELS) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        self.blocks = nn.ModuleList(conv_block(c_in, c_out) for c_in, c_out in zip(widths, widths[1:]))
        self.out_channels = widths[-1]
        self.stride = 2 ** len(channels)

    def forward_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every block, shallowest first; the last one is R."""
        if images.ndim != 4 or images.shape[-1] % self.stride or images.shape[-2] % self.stride:
            raise ValueError(
                f"Encoder expects images [N, C, H, W] with H and W multiples of {self.stride}, "
                f"got shape {tuple(images.shape)}"
            )
        features = [images]
        for block in self.blocks:
            features.append(block(features[-1]))
        return features[1:]

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N, 512, H/32, W/32]
        return self.forward_features(images)[-1]
