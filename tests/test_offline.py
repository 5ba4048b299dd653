"""Networks trained offline (the oracle): how long they train, that they learn, deterministically, and the cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exprgan.models import ExpressionCNN
from exprgan.offline import MIN_STEPS, cached, train_classifier


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


def squares(n_per_class: int = 12, classes: int = 3, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey noise with a bright square whose corner tells the class: a task any classifier learns."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = 0.1 * torch.randn(len(labels), 3, size, size, generator=generator) - 0.5
    for k, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        images[k, :, 4 + 14 * row : 14 + 14 * row, 4 + 14 * col : 14 + 14 * col] = 0.9
    return images, labels


def test_train_classifier_learns_a_separable_task_deterministically() -> None:
    """Catches: a loop that does not step (accuracy at chance), labels misaligned with images
    by the shuffle, a seed that does not fix the result."""
    images, labels = squares()
    network = ExpressionCNN(3, width=8)
    first = train_classifier(network, images, labels, epochs=10, batch_size=12, progress=False, min_steps=0)
    logits = first(images)
    assert float((logits.argmax(1) == labels).float().mean()) == 1.0
    a = train_classifier(_seeded(), images, labels, epochs=2, batch_size=12, progress=False, min_steps=0)
    b = train_classifier(_seeded(), images, labels, epochs=2, batch_size=12, progress=False, min_steps=0)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _seeded() -> nn.Module:
    torch.manual_seed(0)
    return ExpressionCNN(3, width=8)


def test_cached_trains_once_per_key(tmp_path) -> None:
    """Catches: retraining on every call (the cache unused), a cache shared across different
    keys (a network trained on other data reused), weights not restored from the file."""
    calls = []

    def train(network: nn.Module) -> None:
        calls.append(1)
        with torch.no_grad():
            network.weight.fill_(len(calls))

    first = cached(nn.Linear(2, 2), tmp_path, "net", {"data": 1}, train)
    again = cached(nn.Linear(2, 2), tmp_path, "net", {"data": 1}, train)
    other = cached(nn.Linear(2, 2), tmp_path, "net", {"data": 2}, train)
    assert len(calls) == 2 and len(list(tmp_path.glob("net-*.pt"))) == 2
    assert torch.equal(first.weight, again.weight) and float(other.weight[0, 0]) == 2.0
