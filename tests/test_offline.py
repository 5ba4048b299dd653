"""Networks trained offline (the oracle, the expression features): how long they train."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exprgan.offline import MIN_STEPS, train_classifier


def _steps(num_images: int, **options) -> int:
    """Optimiser steps ``train_classifier`` takes on ``num_images`` 4x4 images (one forward a step)."""
    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    calls = []
    network.register_forward_hook(lambda *_: calls.append(1))
    images = torch.randn(num_images, 3, 4, 4)
    train_classifier(network, images, torch.arange(num_images) % 2, progress=False, **options)
    return len(calls)


@pytest.mark.parametrize(
    ("num_images", "expected"),
    [
        (10, MIN_STEPS),  # 15 epochs of one batch: 15 steps, too few; the 15 identities' oracle answered one class
        (130, MIN_STEPS + 2),  # 3 batches an epoch: 134 epochs, the first whole number of epochs past MIN_STEPS
        (2100, 15 * 33),  # the demo's training faces: 15 epochs of 33 batches, unchanged
        (64 * 40, 15 * 40),  # a large set: its 15 epochs are more than MIN_STEPS, unchanged
    ],
)
def test_a_small_set_trains_for_at_least_min_steps(num_images: int, expected: int) -> None:
    """Catches: epochs alone setting the length of training (30 steps for 105 faces)."""
    assert _steps(num_images) == expected


def test_min_steps_zero_leaves_epochs_in_charge() -> None:
    assert _steps(10, min_steps=0) == 15
    assert _steps(10, epochs=3, min_steps=0) == 3
