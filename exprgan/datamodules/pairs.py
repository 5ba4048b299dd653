"""Unpaired pair sampling with target-expression cycling (ELEGANT's training schedule).

``cycled`` (the default): at training step ``t`` every pair ``(I_a, y_a), (I_b, y_b)`` of
the batch has ``y_a = t mod n`` (the step's target expression) and ``y_b`` drawn uniformly
from the other non-empty classes; images are drawn uniformly within their class, so rare
classes are seen as often as common ones. ``shuffled`` (a control with almost no
re-balancing): ``I_a`` is drawn uniformly from all training items, so ``y_a`` follows the
training set's own class frequencies, and ``I_b`` uniformly from the items of the other
classes (a pair needs two expressions), which flattens a skew a little: of the real faces a
classifier reads (``I_a`` and ``I_b``), RAF-DB's frequencies give fear 2.7% instead of 2.3%
and happiness 33.4% instead of 38.9%, where cycling gives every class 14.3%. Which
images a step gets is a pure function of ``(seed, step, rank)``: the stream is
reproducible, resumable from any step, and different on every DDP rank (cycled: while all
ranks train the same target expression).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal, get_args

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

PairBatch = dict[str, torch.Tensor]
Sampling = Literal["cycled", "shuffled"]


class EmptyClassError(ValueError):
    """A class the model must learn has no training images."""


def class_members(
    labels: Sequence[int], num_expressions: int, class_names: Sequence[str] | None = None
) -> list[np.ndarray]:
    """Indices of the items of every class; raises :class:`EmptyClassError` naming empty classes."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_expressions):
        raise ValueError(f"labels must lie in 0..{num_expressions - 1}, got {labels.min()}..{labels.max()}")
    members = [np.flatnonzero(labels == c) for c in range(num_expressions)]
    empty = [c for c, m in enumerate(members) if m.size == 0]
    if empty:
        names = class_names or [str(c) for c in range(num_expressions)]
        listed = ", ".join(f"{names[c]!r} ({c})" for c in empty)
        raise EmptyClassError(f"these classes have no training images: {listed}")
    return members


def target_expression(step: int, num_expressions: int) -> int:
    """The expression on the "A" side at ``step``: ``step mod n``."""
    return step % num_expressions


def check_sampling(sampling: str) -> None:
    """Raise a ``ValueError`` unless ``sampling`` is one of :data:`Sampling`."""
    if sampling not in get_args(Sampling):
        raise ValueError(f"sampling must be one of {list(get_args(Sampling))}, got {sampling!r}")


def sample_pairs(
    members: Sequence[np.ndarray],
    step: int,
    batch_size: int,
    seed: int = 0,
    rank: int = 0,
    sampling: Sampling = "cycled",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Item indices and labels of the pairs of one step: ``(index_a, label_a, index_b, label_b)``.

    ``members``: the item indices of every class (:func:`class_members`); ``sampling``:
    ``cycled`` or ``shuffled`` (see the module docstring).
    """
    check_sampling(sampling)
    n = len(members)
    rng = np.random.default_rng([seed, step, rank])
    if sampling == "shuffled":
        return _shuffled_pairs(members, batch_size, rng)
    label_a = np.full(batch_size, target_expression(step, n), dtype=np.int64)
    label_b = (label_a + rng.integers(1, n, size=batch_size)) % n  # uniform over the other classes
    index_a = np.array([members[c][rng.integers(members[c].size)] for c in label_a])
    index_b = np.array([members[c][rng.integers(members[c].size)] for c in label_b])
    return index_a, label_a, index_b, label_b


def _shuffled_pairs(
    members: Sequence[np.ndarray], batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``I_a`` uniform over all items, ``I_b`` uniform over the items of the other classes."""
    items = np.concatenate(members)  # grouped by class: class c fills [start[c], start[c] + size[c])
    size = np.array([m.size for m in members])
    start = np.cumsum(size) - size
    position_a = rng.integers(items.size, size=batch_size)
    label_a = np.searchsorted(start, position_a, side="right") - 1
    # a position among the items outside class y_a, then stepped over that class's block
    position_b = rng.integers(items.size - size[label_a])
    position_b = np.where(position_b < start[label_a], position_b, position_b + size[label_a])
    label_b = np.searchsorted(start, position_b, side="right") - 1
    return items[position_a], label_a.astype(np.int64), items[position_b], label_b.astype(np.int64)


class UnpairedPairs(IterableDataset):
    """Batches of unpaired pairs for the steps ``[start_step, epoch end)``.

    Each item is one whole batch (use ``DataLoader(batch_size=None)``): a dict with
    ``image_a, image_b: [B, 3, H, W]``, ``label_a, label_b: [B]`` and ``step`` (scalar).
    An epoch is ``steps_per_epoch`` steps; iteration starts at ``start_step`` and stops at
    the end of the epoch that contains it, so a run resumed mid-epoch finishes that epoch.
    With several loader workers, worker ``w`` renders steps ``w, w + W, ...`` and the
    loader returns them in step order.

    Args:
        labels: label of every item of the underlying image set.
        load_image: ``index -> [3, H, W]`` float tensor in ``[-1, 1]``.
        num_expressions: ``n``.
        batch_size: pairs per step (per rank).
        steps_per_epoch: steps in an epoch.
        seed: seed of the pair stream.
        start_step: first step to yield.
        rank, world_size: this process's DDP rank and the number of ranks.
        class_names: names used in error messages.
        sampling: ``cycled`` (the step's target expression, images uniform within a class)
            or ``shuffled`` (images uniform over the set): see the module docstring.
    """

    def __init__(
        self,
        labels: Sequence[int],
        load_image: Callable[[int], torch.Tensor],
        num_expressions: int,
        batch_size: int,
        steps_per_epoch: int,
        seed: int = 0,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        class_names: Sequence[str] | None = None,
        sampling: Sampling = "cycled",
    ) -> None:
        super().__init__()
        check_sampling(sampling)
        if batch_size < 1 or steps_per_epoch < 1:
            raise ValueError(f"batch_size and steps_per_epoch must be >= 1, got {batch_size} and {steps_per_epoch}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.members = class_members(labels, num_expressions, class_names)
        self.load_image = load_image
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size
        self.sampling = sampling

    def __len__(self) -> int:
        """Steps in a whole epoch (a resumed epoch yields only its remaining steps)."""
        return self.steps_per_epoch

    def epoch_end(self, step: int) -> int:
        """First step of the epoch after the one containing ``step``."""
        return (step // self.steps_per_epoch + 1) * self.steps_per_epoch

    def batch(self, step: int) -> PairBatch:
        """The batch of ``step`` on this rank."""
        index_a, label_a, index_b, label_b = sample_pairs(
            self.members, step, self.batch_size, self.seed, self.rank, self.sampling
        )
        return {
            "image_a": torch.stack([self.load_image(int(i)) for i in index_a]),
            "label_a": torch.from_numpy(label_a),
            "image_b": torch.stack([self.load_image(int(i)) for i in index_b]),
            "label_b": torch.from_numpy(label_b),
            "step": torch.tensor(step),
        }

    def __iter__(self) -> Iterator[PairBatch]:
        worker = get_worker_info()
        offset, stride = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        for step in range(self.start_step + offset, self.epoch_end(self.start_step), stride):
            yield self.batch(step)
