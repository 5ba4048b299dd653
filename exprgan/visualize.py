"""Image grids for logging and for users."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.utils import make_grid


def pair_grid(rows: Sequence[torch.Tensor], max_samples: int = 8) -> torch.Tensor:
    """One row per tensor (``[N, 3, H, W]`` in ``[-1, 1]``), ``max_samples`` columns -> ``[3, h, w]`` in ``[0, 1]``.

    With ``rows = [I_a, I_b, I_c, I_d, I'_a, I'_b]`` column ``k`` shows pair ``k``: the two
    inputs, the two transfers and the two reconstructions.
    """
    columns = min(max_samples, *(len(r) for r in rows))
    images = torch.cat([r[:columns].detach().float().cpu() for r in rows])
    return make_grid(images, nrow=columns, padding=1, normalize=True, value_range=(-1, 1))
