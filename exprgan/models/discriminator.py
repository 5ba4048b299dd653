"""D1 and D2: conditional discriminators at two image scales (Table I, Eq. 5)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from exprgan.models.encoder import conv_block

DISCRIMINATOR_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)


class ConditionalDiscriminator(nn.Module):
    """``(image [N, 3, s, s], label [N]) -> real/fake logit [N]``.

    The label is one-hot encoded and tiled to ``n`` extra input channels; four
    Conv(k3, s2) -> l2-N -> LeakyReLU blocks follow, then ``Linear(512 * (s/16)^2 -> 1)``.

    Args:
        num_expressions: ``n``.
        image_size: side ``s`` of the square images it judges (a multiple of 16).
        image_channels: channels of the images.
        channels: widths of the conv blocks (64, 128, 256, 512).
    """

    def __init__(
        self,
        num_expressions: int,
        image_size: int,
        image_channels: int = 3,
        channels: Sequence[int] = DISCRIMINATOR_CHANNELS,
    ) -> None:
        super().__init__()
        stride = 2 ** len(channels)
        if image_size % stride:
            raise ValueError(f"ConditionalDiscriminator needs image_size divisible by {stride}, got {image_size}")
        self.num_expressions = num_expressions
        self.image_size = image_size
        widths = [image_channels + num_expressions, *channels]
        self.blocks = nn.Sequential(*(conv_block(c_in, c_out) for c_in, c_out in zip(widths, widths[1:])))
        self.fc = nn.Linear(widths[-1] * (image_size // stride) ** 2, 1)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # -> [N] logits
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"this discriminator judges {self.image_size}x{self.image_size} images, got {tuple(images.shape[-2:])}"
            )
        condition = F.one_hot(labels, self.num_expressions).to(images.dtype)  # [N, n]
        condition = condition[:, :, None, None].expand(-1, -1, *images.shape[-2:])
        x = self.blocks(torch.cat([images, condition], dim=1))  # [N, 512, s/16, s/16]
        return self.fc(x.flatten(1)).squeeze(1)


class MultiScaleDiscriminator(nn.Module):
    """D1 on the full-size image and D2 on it average-pooled to half size.

    ``forward`` returns ``[logits_d1, logits_d2]`` (each ``[N]``), the order the
    adversarial losses weight 1 and 0.5.

    Args:
        num_expressions: ``n``.
        image_size: side of the full-size images (a multiple of 32).
        image_channels: channels of the images.
        width: channels of the first block (64: widths 64, 128, 256, 512 as in the paper).
    """

    def __init__(self, num_expressions: int, image_size: int, image_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        channels = (width, 2 * width, 4 * width, 8 * width)
        self.d1 = ConditionalDiscriminator(num_expressions, image_size, image_channels, channels)
        self.d2 = ConditionalDiscriminator(num_expressions, image_size // 2, image_channels, channels)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
        return [self.d1(images, labels), self.d2(F.avg_pool2d(images, kernel_size=2), labels)]
