"""Conditional adversarial losses (Eq. 5; Eq. 7's interpolation loss is the same loss on the
images decoded from interpolated codes).

Discriminators return one logit tensor per scale (``[D1 logits, D2 logits]``); every
function here takes such a list and weights the scales by ``scale_weights`` (1 and 0.5,
as the authors' release). Losses are binary cross-entropy on logits, which stays exact
and safe under mixed precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

SCALE_WEIGHTS: tuple[float, ...] = (1.0, 0.5)


def adversarial_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Mean BCE of ``logits`` against the target "real" (1) or "fake" (0)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


def _check_scales(scales: Sequence[Sequence[torch.Tensor] | torch.Tensor], weights: Sequence[float]) -> None:
    lengths = {len(s) for s in scales}
    if lengths != {len(weights)}:
        raise ValueError(f"expected {len(weights)} discriminator scales to match scale_weights, got {sorted(lengths)}")


def multiscale_adversarial_loss(
    logits: Sequence[torch.Tensor], real: bool, scale_weights: Sequence[float] = SCALE_WEIGHTS
) -> torch.Tensor:
    """``sum_k w_k * BCE(logits_k, real)`` over the discriminator scales.

    The generator's adversarial and interpolation losses are this on the logits of its images
    with ``real=True``; the discriminators' interpolation loss, with ``real=False``.
    """
    _check_scales([logits], scale_weights)
    return sum(w * adversarial_loss(scale, real) for w, scale in zip(scale_weights, logits))


def d_adversarial_loss(
    real_logits: Sequence[torch.Tensor],
    fake_logits: Sequence[torch.Tensor],
    scale_weights: Sequence[float] = SCALE_WEIGHTS,
) -> torch.Tensor:
    """The discriminators' side of Eq. 5: real images to 1, generated images to 0.

    Per scale, the BCE is averaged over all the images judged (real and fake together),
    then scales are weighted: ``sum_k w_k * mean_images BCE``.
    """
    _check_scales([real_logits, fake_logits], scale_weights)
    total = real_logits[0].new_zeros(())
    for w, real, fake in zip(scale_weights, real_logits, fake_logits):
        logits = torch.cat([real, fake])
        target = torch.cat([torch.ones_like(real), torch.zeros_like(fake)])
        total = total + w * F.binary_cross_entropy_with_logits(logits, target)
    return total
