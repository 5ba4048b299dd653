"""Pair sampling: target cycling, y_b != y_a, imbalance, determinism, ranks, workers, resume."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from exprgan.datamodules import EmptyClassError, UnpairedPairs, class_members, sample_pairs


def _members(sizes: list[int]) -> list[np.ndarray]:
    labels = [c for c, size in enumerate(sizes) for _ in range(size)]
    return class_members(labels, len(sizes))


def test_target_expression_cycles_and_the_other_side_differs() -> None:
    members = _members([5, 3, 4, 6, 2, 7, 3])
    for step in range(30):
        index_a, label_a, index_b, label_b = sample_pairs(members, step, batch_size=16)
        assert (label_a == step % 7).all()
        assert (label_b != label_a).all()
        for index, label in zip(np.concatenate([index_a, index_b]), np.concatenate([label_a, label_b])):
            assert index in members[label]


def test_imbalanced_classes_are_sampled_evenly() -> None:
    members = _members([500, 1, 20, 500, 3, 100, 1000])
    counts = Counter()
    for step in range(700):
        _, _, _, label_b = sample_pairs(members, step, batch_size=8)
        counts.update(label_b.tolist())
    # each class is "the other side" for 6/7 of the steps, 1/6 of the time: about 800 draws each
    assert all(650 < counts[c] < 950 for c in range(7)), counts
    rare = sample_pairs(members, step=1, batch_size=4)  # class 1 has a single image
    assert (rare[0] == members[1][0]).all()


def test_sampling_is_deterministic_and_differs_across_ranks_and_seeds() -> None:
    members = _members([10] * 7)
    first = sample_pairs(members, step=5, batch_size=8, seed=1, rank=0)
    again = sample_pairs(members, step=5, batch_size=8, seed=1, rank=0)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    other_rank = sample_pairs(members, step=5, batch_size=8, seed=1, rank=1)
    other_seed = sample_pairs(members, step=5, batch_size=8, seed=2, rank=0)
    assert not np.array_equal(first[0], other_rank[0]) and not np.array_equal(first[0], other_seed[0])
    assert np.array_equal(first[1], other_rank[1])  # every rank trains the same target


def test_empty_classes_are_named() -> None:
    with pytest.raises(EmptyClassError, match=r"'fear' \(1\), 'anger' \(5\)"):
        class_members([0, 2, 3, 4, 6], 7, ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"])
    with pytest.raises(ValueError, match="0..6"):
        class_members([0, 7], 7)


def _pairs(**overrides) -> UnpairedPairs:
    labels = [c % 3 for c in range(12)]
    options = dict(
        labels=labels,
        load_image=lambda i: torch.full((3, 4, 4), float(i)),
        num_expressions=3,
        batch_size=2,
        steps_per_epoch=5,
        seed=0,
    )
    options.update(overrides)
    return UnpairedPairs(**options)


def test_a_resumed_epoch_yields_its_remaining_steps() -> None:
    full = list(_pairs())
    assert [int(b["step"]) for b in full] == [0, 1, 2, 3, 4]
    resumed = list(_pairs(start_step=3))
    assert [int(b["step"]) for b in resumed] == [3, 4]
    assert torch.equal(resumed[0]["image_a"], full[3]["image_a"])
    assert len(_pairs(start_step=3)) == 5  # an epoch is always steps_per_epoch long
    assert [int(b["step"]) for b in _pairs(start_step=7)] == [7, 8, 9]


def test_loader_workers_keep_step_order_and_content() -> None:
    single = list(DataLoader(_pairs(), batch_size=None, num_workers=0))
    workers = list(DataLoader(_pairs(), batch_size=None, num_workers=2))
    assert [int(b["step"]) for b in workers] == [0, 1, 2, 3, 4]
    for x, y in zip(single, workers):
        assert all(torch.equal(x[k], y[k]) for k in x)


def test_batches_have_the_documented_layout() -> None:
    batch = next(iter(_pairs()))
    assert batch["image_a"].shape == batch["image_b"].shape == (2, 3, 4, 4)
    assert batch["label_a"].dtype == torch.int64 and batch["label_a"].shape == (2,)
    # the image loaded is the one sampled: its value is its index, whose label is index % 3
    assert torch.equal(batch["image_b"][:, 0, 0, 0].long() % 3, batch["label_b"])
