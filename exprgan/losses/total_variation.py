"""Total variation (Eq. 12), the anti-ghosting term on synthesised images."""

from __future__ import annotations

import torch


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic L1 total variation, averaged: ``mean|dI/dy| + mean|dI/dx|``.

    ``images`` is ``[N, C, H, W]``. Differentiable: call it on the generator's outputs
    themselves (not detached copies), or it does nothing for training.
    """
    if images.ndim != 4:
        raise ValueError(f"total_variation expects [N, C, H, W], got {tuple(images.shape)}")
    vertical = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    horizontal = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    return vertical + horizontal
