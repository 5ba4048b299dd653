"""G_dec: from ``[R_switched, R_own, S]`` back to a residual image, with additive U-Net skips."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from exprgan.models.l2norm import L2Norm

DECODER_CHANNELS: tuple[int, ...] = (512, 256, 128, 64)


def deconv_block(in_channels: int, out_channels: int, negative_slope: float) -> nn.Sequential:
    """DeConv(d, k3, s2, p1, output_padding 1) -> l2-N -> activation: doubles the size."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1),
        L2Norm(),
        nn.LeakyReLU(negative_slope) if negative_slope > 0 else nn.ReLU(),
    )


class Decoder(nn.Module):
    """G_dec of Table I and Eq. 4: ``[R_switched, R_own, S] -> residual: [N, 3, H, W]``.

    The input is the channel concatenation of the (switched or own) code, the image's own
    code and the switch code: ``2 * code_channels + code_extra`` channels (1024 + 20n).
    After deconv block ``k`` (k = 1..4) the output of encoder block ``5 - k`` of the image
    being edited is added (``skips`` as returned by ``Encoder.forward_features``). The last
    layer (a deconv, or with ``output_block`` a skip-less fifth block and a 3x3 conv) gives the
    residual ``2 * tanh(.)`` in ``[-2, 2]``, so that ``input + residual`` can reach any value
    of ``[-1, 1]`` (the generator clamps the sum).

    Args:
        code_extra: channels of the switch code S (``20 * n``).
        code_channels: channels of R (512).
        channels: output channels of the four upsampling blocks (512, 256, 128, 64).
        out_channels: image channels.
        negative_slope: LeakyReLU slope of the blocks (paper: 0.2); 0 gives ReLU, the
            activation of the authors' release.
        identity_init: zero the last layer, so the residual starts at exactly 0 and the
            untrained generator returns its input (the paper does not say how G is
            initialised; starting from the identity, G only has to learn the edit).
        output_block: not in the paper. The last deconv becomes a fifth block (deconv to full
            resolution at ``channels[-1]`` channels, l2-N, activation) followed by a 3x3
            convolution to the residual, so a non-linearity acts at the image's resolution;
            the paper's last layer maps half-resolution features linearly to pixels.
    """

    def __init__(
        self,
        code_extra: int,
        code_channels: int = 512,
        channels: Sequence[int] = DECODER_CHANNELS,
        out_channels: int = 3,
        negative_slope: float = 0.2,
        identity_init: bool = True,
        output_block: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = 2 * code_channels + code_extra
        widths = [self.in_channels, *channels]
        self.blocks = nn.ModuleList(
            deconv_block(c_in, c_out, negative_slope) for c_in, c_out in zip(widths, widths[1:])
        )
        last: nn.Conv2d | nn.ConvTranspose2d
        self.to_residual: nn.Module
        if output_block:
            last = nn.Conv2d(widths[-1], out_channels, kernel_size=3, padding=1)
            self.to_residual = nn.Sequential(deconv_block(widths[-1], widths[-1], negative_slope), last)
        else:
            last = nn.ConvTranspose2d(widths[-1], out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)
            self.to_residual = last
        if identity_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(
        self, switched: torch.Tensor, own: torch.Tensor, code: torch.Tensor, skips: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        x = torch.cat([switched, own, code], dim=1)  # [N, 1024 + 20n, H/32, W/32]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Decoder expects {self.in_channels} input channels, got {x.shape[1]}")
        if len(skips) < len(self.blocks):
            raise ValueError(f"Decoder needs {len(self.blocks)} skip tensors, got {len(skips)}")
        # skips are shallowest first; block k adds the one of matching size, deepest first
        for block, skip in zip(self.blocks, reversed(skips[: len(self.blocks)])):
            x = block(x) + skip
        return 2.0 * torch.tanh(self.to_residual(x))  # [N, 3, H, W], in [-2, 2]
