"""The classifier's loss L_C (Eq. 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy of ``logits [N, n]`` against integer ``labels [N]``, averaged.

    For real images the labels are their own; for generated ``I_c, I_d`` they are
    ``y_b, y_a``, the expressions they were given.
    """
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
