"""D1 and D2: conditional discriminators at two image scales (Table I, Eq. 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from exprgan.models.encoder import conv_block

DISCRIMINATOR_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)

Conditioning = Literal["concat", "projection"]


class ConditionalDiscriminator(nn.Module):
    """``(image [N, 3, s, s], label [N]) -> real/fake logit [N]``.

    Four Conv(k3, s2) -> l2-N -> LeakyReLU blocks, then ``Linear(512 * (s/16)^2 -> 1)``.
    How the label enters (``conditioning``):

    - ``"concat"`` (the paper): the label, one-hot and tiled to ``n`` extra input channels.
    - ``"projection"`` (Miyato & Koyama, ICLR 2018; not in the paper): the blocks see the
      image alone and the logit gains ``<embed(label), sum of the last features over space>``,
      a learned per-expression direction. The label's evidence is read where the features
      are most abstract, instead of having to survive four layers from the input.

    Args:
        num_expressions: ``n``.
        image_size: side ``s`` of the square images it judges (a multiple of 16).
        image_channels: channels of the images.
        channels: widths of the conv blocks (64, 128, 256, 512).
        conditioning: ``"concat"`` or ``"projection"``.
    """

    def __init__(
        self,
        num_expressions: int,
        image_size: int,
        image_channels: int = 3,
        channels: Sequence[int] = DISCRIMINATOR_CHANNELS,
        conditioning: Conditioning = "concat",
    ) -> None:
        super().__init__()
        stride = 2 ** len(channels)
        if image_size % stride:
            raise ValueError(f"ConditionalDiscriminator needs image_size divisible by {stride}, got {image_size}")
        if conditioning not in ("concat", "projection"):
            raise ValueError(f"conditioning must be 'concat' or 'projection', got {conditioning!r}")
        self.num_expressions = num_expressions
        self.image_size = image_size
        self.conditioning = conditioning
        widths = [image_channels + (num_expressions if conditioning == "concat" else 0), *channels]
        self.blocks = nn.Sequential(*(conv_block(c_in, c_out) for c_in, c_out in zip(widths, widths[1:])))
        self.fc = nn.Linear(widths[-1] * (image_size // stride) ** 2, 1)
        self.embedding = nn.Embedding(num_expressions, widths[-1]) if conditioning == "projection" else None
        if self.embedding is not None:
            nn.init.xavier_uniform_(self.embedding.weight)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits ``[N]`` of images ``[N, 3, s, s]`` under ``labels [N]``; with ``labels [N, K]``,
        ``[N, K]``: each image under each of its K labels (by projection, from one pass of the blocks)."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"this discriminator judges {self.image_size}x{self.image_size} images, got {tuple(images.shape[-2:])}"
            )
        if self.embedding is not None:
            x = self.blocks(images)  # [N, 512, s/16, s/16]
            pooled = x.sum(dim=(2, 3)).view(len(x), *[1] * (labels.ndim - 1), -1)  # [N, (1,) 512]
            projection = (self.embedding(labels) * pooled).sum(dim=-1)  # [N (, K)]
            return self.fc(x.flatten(1)).view(len(x), *[1] * (labels.ndim - 1)) + projection
        flat = labels.T.reshape(-1) if labels.ndim == 2 else labels  # the label is an input: a pass per label
        k = len(flat) // len(images)
        condition = F.one_hot(flat, self.num_expressions).to(images.dtype)  # [K N, n]
        condition = condition[:, :, None, None].expand(-1, -1, *images.shape[-2:])
        inputs = images.repeat(k, 1, 1, 1) if k > 1 else images
        x = self.blocks(torch.cat([inputs, condition], dim=1))  # [K N, 512, s/16, s/16]
        logits = self.fc(x.flatten(1)).squeeze(1)  # [K N]
        return logits.view(k, -1).T if labels.ndim == 2 else logits


class MultiScaleDiscriminator(nn.Module):
    """D1 on the full-size image and D2 on it average-pooled to half size.

    ``forward`` returns ``[logits_d1, logits_d2]`` (each ``[N]``, or ``[N, K]`` for labels
    ``[N, K]``), the order the adversarial losses weight 1 and 0.5.

    Args:
        num_expressions: ``n``.
        image_size: side of the full-size images (a multiple of 32).
        image_channels: channels of the images.
        width: channels of the first block (64: widths 64, 128, 256, 512 as in the paper).
        conditioning: how the label enters D1 and D2 (``"concat"``, the paper, or
            ``"projection"``; see :class:`ConditionalDiscriminator`).
    """

    def __init__(
        self,
        num_expressions: int,
        image_size: int,
        image_channels: int = 3,
        width: int = 64,
        conditioning: Conditioning = "concat",
    ) -> None:
        super().__init__()
        channels = (width, 2 * width, 4 * width, 8 * width)
        self.d1 = ConditionalDiscriminator(num_expressions, image_size, image_channels, channels, conditioning)
        self.d2 = ConditionalDiscriminator(num_expressions, image_size // 2, image_channels, channels, conditioning)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
        return [self.d1(images, labels), self.d2(F.avg_pool2d(images, kernel_size=2), labels)]
