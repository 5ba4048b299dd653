"""The classifier's loss L_C (Eq. 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    label_smoothing: float = 0.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy of ``logits [N, n]`` against integer ``labels [N]``, averaged
    (with ``weights [N]``, their weighted mean).

    For real images the labels are their own; for generated ``I_c, I_d`` they are
    ``y_b, y_a``, the expressions they were given.
    """
    if weights is None:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    per_image = F.cross_entropy(logits, labels, reduction="none", label_smoothing=label_smoothing)
    return (weights * per_image).sum() / weights.sum()
