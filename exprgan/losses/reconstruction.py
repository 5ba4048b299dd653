"""Pixel losses: reconstruction (Eq. 9) and pixel-sum (Eq. 10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(
    images_a: torch.Tensor, recon_a: torch.Tensor, images_b: torch.Tensor, recon_b: torch.Tensor
) -> torch.Tensor:
    """Eq. 9, ``L_r``: ``MSE(I'_a, I_a) + MSE(I'_b, I_b)`` (means over all elements)."""
    return F.mse_loss(recon_a, images_a) + F.mse_loss(recon_b, images_b)


def pixel_sum_loss(
    images_a: torch.Tensor, images_b: torch.Tensor, image_c: torch.Tensor, image_d: torch.Tensor
) -> torch.Tensor:
    """Eq. 10, ``L_p``, as a distance: ``mean |(I_a + I_b) - (I_c + I_d)|``.

    Swapping expressions between two faces should leave the pixel sum of the pair
    unchanged. The paper prints a difference of norms, which can go negative; this is the
    L1 distance the authors' release optimises.
    """
    return F.l1_loss(image_c + image_d, images_a + images_b)


def change_l1(
    images_a: torch.Tensor, images_b: torch.Tensor, image_c: torch.Tensor, image_d: torch.Tensor
) -> torch.Tensor:
    """The size of G's edits, ``mean |I_c - I_a| + mean |I_d - I_b|``: an L1 penalty that keeps
    the pixels an expression does not need unchanged (GANimation's attention-mask sparsity,
    Pumarola et al. 2018, on the change itself). Not in the paper."""
    return F.l1_loss(image_c, images_a) + F.l1_loss(image_d, images_b)
