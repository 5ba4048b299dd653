"""R1, a gradient penalty on the discriminators at real images (Mescheder et al., ICML 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from exprgan.losses.adversarial import SCALE_WEIGHTS


def r1_penalty(
    real_logits: Sequence[torch.Tensor], real_images: torch.Tensor, scale_weights: Sequence[float] = SCALE_WEIGHTS
) -> torch.Tensor:
    """``E ||d/dx sum_k w_k D_k(x)||^2`` over the real images ``x`` (mean over the batch).

    ``real_images`` must require grad and ``real_logits`` (one tensor per scale) must be
    computed from them, possibly as part of a larger batch. The graph is kept
    (``create_graph``), so the penalty trains the discriminators. Add ``gamma / 2`` times
    it to their loss: it keeps D smooth around real faces, so the generator receives
    gradients towards real changes rather than towards D's blind spots.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs the real images with requires_grad=True, before the discriminator call")
    weighted = sum(w * logits.sum() for w, logits in zip(scale_weights, real_logits))
    (grad,) = torch.autograd.grad(weighted, real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
