"""G: encoder, switch unit and decoder wired as in Fig. 2 and Eq. 4."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from exprgan.models.decoder import Decoder
from exprgan.models.encoder import Encoder
from exprgan.models.switch import SwitchUnit


@dataclass
class GeneratorOutput:
    """What one generator pass over a pair ``(I_a, y_a), (I_b, y_b)`` produces.

    All images are ``[N, 3, H, W]`` in ``[-1, 1]``; codes are ``[N, 512, H/32, W/32]``.

    Attributes:
        image_c: I_c, I_a's face with expression ``y_b``.
        image_d: I_d, I_b's face with expression ``y_a``.
        recon_a: I'_a, I_a reconstructed from ``[R_a, R_a, 0]``.
        recon_b: I'_b, I_b reconstructed from ``[R_b, R_b, 0]``.
        code_a: R_a = G_enc(I_a).
        code_b: R_b = G_enc(I_b).
        interp_c: I_a decoded from the interpolated ``R_c^p`` (Eq. 6, target ``y_b``), or None.
        interp_d: I_b decoded from ``R_d^p`` (target ``y_a``), or None.
    """

    image_c: torch.Tensor
    image_d: torch.Tensor
    recon_a: torch.Tensor
    recon_b: torch.Tensor
    code_a: torch.Tensor
    code_b: torch.Tensor
    interp_c: torch.Tensor | None = None
    interp_d: torch.Tensor | None = None


class Generator(nn.Module):
    """The generator G: ``G_enc`` -> switch unit -> ``G_dec`` with residual output.

    All decoder inputs of a step (``[R_c, R_a, S]``, ``[R_d, R_b, S]``, ``[R_a, R_a, 0]``,
    ``[R_b, R_b, 0]`` and, when asked, the interpolated ``[R_c^p, R_a, S]``,
    ``[R_d^p, R_b, S]``) go through the decoder as one batch, and both input images through
    the encoder as one batch; l2-N has no batch statistics, so this equals separate calls.

    Args:
        num_expressions: ``n``; R is split into ``n`` blocks.
        image_channels: channels of the images.
        code_repeat: repetitions of the n-vector in the switch code (20).
        decoder_negative_slope: LeakyReLU slope in the decoder (0.2; 0 gives ReLU).
        interpolation_p: ``p`` of Eq. 6 used when ``forward(..., interpolate=True)``.
        width: channels of the first encoder block; the paper's 64 gives encoder widths
            64, 128, 256, 512, 512 and decoder widths 512, 256, 128, 64 (R has ``8 * width``
            channels). Smaller widths make fast CPU demos.
        identity_init: start as the identity map (zero residual; see
            :class:`~exprgan.models.decoder.Decoder`).
        decoder_output_block: not in the paper; a full-resolution block before the residual
            (see :class:`~exprgan.models.decoder.Decoder`'s ``output_block``).
    """

    def __init__(
        self,
        num_expressions: int,
        image_channels: int = 3,
        code_repeat: int = 20,
        decoder_negative_slope: float = 0.2,
        interpolation_p: float = 0.5,
        width: int = 64,
        identity_init: bool = True,
        decoder_output_block: bool = False,
    ) -> None:
        super().__init__()
        self.num_expressions = num_expressions
        self.interpolation_p = interpolation_p
        self.encoder = Encoder(in_channels=image_channels, channels=(width, 2 * width, 4 * width, 8 * width, 8 * width))
        self.switch = SwitchUnit(num_expressions, channels=self.encoder.out_channels, code_repeat=code_repeat)
        self.decoder = Decoder(
            code_extra=self.switch.code_channels,
            code_channels=self.encoder.out_channels,
            channels=(8 * width, 4 * width, 2 * width, width),
            out_channels=image_channels,
            negative_slope=decoder_negative_slope,
            identity_init=identity_init,
            output_block=decoder_output_block,
        )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The expression representation R = G_enc(I): ``[N, 512, H/32, W/32]``."""
        return self.encoder(images)

    def forward(
        self,
        images_a: torch.Tensor,
        images_b: torch.Tensor,
        labels_a: torch.Tensor,
        labels_b: torch.Tensor,
        interpolate: bool = False,
    ) -> GeneratorOutput:
        """Transfer expressions between two unpaired batches (``labels_a != labels_b``)."""
        if images_a.shape != images_b.shape:
            raise ValueError(f"image batches differ in shape: {tuple(images_a.shape)} vs {tuple(images_b.shape)}")
        features = self.encoder.forward_features(torch.cat([images_a, images_b]))  # each [2N, ...]
        code_a, code_b = features[-1].chunk(2)
        code_c, code_d = self.switch.swap(code_a, code_b, labels_a, labels_b)
        s = self.switch.code(labels_a, labels_b, code_a)  # S_c = S_d: ones at y_a and y_b
        zero = self.switch.zero_code(code_a)

        switched = [code_c, code_d, code_a, code_b]
        own = [code_a, code_b, code_a, code_b]
        codes = [s, s, zero, zero]
        if interpolate:
            switched += self.switch.interpolate(code_a, code_b, labels_a, labels_b, self.interpolation_p)
            own += [code_a, code_b]
            codes += [s, s]
        pairs = len(switched) // 2  # every input alternates a-side, b-side
        skips = [f.repeat(pairs, 1, 1, 1) for f in features[:-1]]
        base = torch.cat([images_a, images_b]).repeat(pairs, 1, 1, 1)

        residual = self.decoder(torch.cat(switched), torch.cat(own), torch.cat(codes), skips)
        images = (base + residual).clamp(-1.0, 1.0).chunk(len(switched))
        return GeneratorOutput(
            image_c=images[0],
            image_d=images[1],
            recon_a=images[2],
            recon_b=images[3],
            code_a=code_a,
            code_b=code_b,
            interp_c=images[4] if interpolate else None,
            interp_d=images[5] if interpolate else None,
        )

    def transfer(
        self,
        identity_images: torch.Tensor,
        reference_images: torch.Tensor,
        identity_labels: torch.Tensor,
        reference_labels: torch.Tensor,
    ) -> torch.Tensor:
        """``identity_images`` with the expression of ``reference_images`` (I_c of Eq. 4).

        Decodes only the images it returns: ``[R_c, R_a, S]`` per sample, or ``[R_a, R_a, 0]``
        (the reconstruction) where the two labels are equal and there is nothing to swap.
        """
        features = self.encoder.forward_features(torch.cat([identity_images, reference_images]))
        code_a, code_b = features[-1].chunk(2)  # each [N, 512, H/32, W/32]
        same = identity_labels == reference_labels
        # give equal pairs any other label so the batch can be switched; their code is R_a below
        safe_reference = torch.where(same, (identity_labels + 1) % self.num_expressions, reference_labels)
        code_c, _ = self.switch.swap(code_a, code_b, identity_labels, safe_reference)
        keep = same[:, None, None, None]
        switched = torch.where(keep, code_a, code_c)
        code = torch.where(
            keep, self.switch.zero_code(code_a), self.switch.code(identity_labels, safe_reference, code_a)
        )
        skips = [f[: len(identity_images)] for f in features[:-1]]
        residual = self.decoder(switched, code_a, code, skips)
        return (identity_images + residual).clamp(-1.0, 1.0)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode ``[R, R, 0]``: the reconstruction I' of ``images``."""
        features = self.encoder.forward_features(images)
        code = features[-1]
        residual = self.decoder(code, code, self.switch.zero_code(code), features[:-1])
        return (images + residual).clamp(-1.0, 1.0)
