"""``SyntheticFacesDataModule``: the built-in demo data set of rendered faces, with transfer ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from exprgan.datamodules.base import PairDataModule, to_tensor
from exprgan.datamodules.face_renderer import EXPRESSIONS, RENDERER_VERSION, render
from exprgan.evaluation.oracle import rendered_oracle


class _Items(Dataset):
    """Rendered faces; evaluation splits add a reference face and the transfer ground truth."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        identities: torch.Tensor,
        reference: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> None:
        self.images, self.labels, self.identities = images, labels, identities
        self.reference, self.targets = reference, targets

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        """Face ``index`` as ``uint8 [S, S, 3]``."""
        return self.images[index].numpy()

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {
            "image": to_tensor(self.image(index)),
            "label": self.labels[index],
            "subject": self.identities[index],
        }
        if self.reference is not None and self.targets is not None:
            ref = int(self.reference[index])
            item["reference"] = to_tensor(self.image(ref))
            item["reference_label"] = self.labels[ref]
            item["target"] = to_tensor(self.targets[index].numpy())
        return item


class SyntheticFacesDataModule(PairDataModule):
    """Procedurally rendered faces of the 7 RAF-DB expressions; trains anywhere, no download.

    Every identity appears once with each expression, at an intensity drawn from
    ``[min_intensity, 1]``. Train, validation and test identities are disjoint. Evaluation
    items pair every face with a reference face of another identity and another
    expression, and carry the ground-truth transfer
    ``render(identity of the face, expression and intensity of the reference)``, so the
    test measures transfers (:mod:`exprgan.evaluation.transfer`), judged by the oracle of
    :meth:`transfer_oracle`.

    Args:
        image_size: side in pixels (a multiple of 32).
        train_identities, val_identities, test_identities: identities per split.
        min_intensity: lowest expression intensity.
        batch_size, eval_batch_size, num_workers, seed, steps_per_epoch: see
            :class:`~exprgan.datamodules.base.PairDataModule`.
    """

    num_expressions = len(EXPRESSIONS)
    class_names = EXPRESSIONS

    def __init__(
        self,
        image_size: int = 64,
        train_identities: int = 300,
        val_identities: int = 30,
        test_identities: int = 100,
        min_intensity: float = 0.6,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, seed, steps_per_epoch)
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        self.image_size = image_size
        self.split_sizes = {"train": train_identities, "val": val_identities, "test": test_identities}
        self.min_intensity = min_intensity
        self._splits: dict[str, _Items] = {}

    def identities(self, split: str) -> range:
        """Identity numbers of ``split``; the three ranges are disjoint."""
        start = 0
        for name in ("train", "val", "test"):
            if name == split:
                return range(start, start + self.split_sizes[name])
            start += self.split_sizes[name]
        raise ValueError(f"unknown split {split!r}")

    def intensity(self, identity: int, expression: int) -> float:
        """The intensity identity ``identity`` shows ``expression`` with in this data set."""
        rng = np.random.default_rng([self.seed, identity, expression, 0x17])
        return float(rng.uniform(self.min_intensity, 1.0))

    def render(self, identity: int, expression: int, intensity: float) -> np.ndarray:
        """:func:`~exprgan.datamodules.face_renderer.render` at this data set's size and seed."""
        return render(identity, expression, intensity, size=self.image_size, seed=self.seed)

    def _build(self, split: str) -> _Items:
        ids = self.identities(split)
        n = self.num_expressions
        rows = [(i, e) for i in ids for e in range(n)]
        images = np.stack(
            [
                self.render(i, e, self.intensity(i, e))
                for i, e in tqdm(rows, desc=f"rendering {split} faces", leave=False, disable=len(rows) < 500)
            ]
        )
        labels = np.array([e for _, e in rows], dtype=np.int64)
        identities = np.array([i for i, _ in rows], dtype=np.int64)
        tensors = [torch.from_numpy(a) for a in (images, labels, identities)]
        if split == "train":  # trained on through the pair stream: no references needed
            return _Items(*tensors)
        if len(ids) < 2:
            raise ValueError(f"the {split} split needs at least 2 identities for its transfer pairs, got {len(ids)}")
        # a reference of another identity and another expression for every face
        rng = np.random.default_rng([self.seed, len(ids), 0x5EF])
        reference = np.empty(len(rows), dtype=np.int64)
        for k, (i, e) in enumerate(rows):
            candidates = np.flatnonzero((identities != i) & (labels != e))
            reference[k] = candidates[rng.integers(len(candidates))]
        targets = np.stack(
            [
                self.render(i, int(labels[r]), self.intensity(int(identities[r]), int(labels[r])))
                for (i, _), r in zip(rows, reference)
            ]
        )
        return _Items(*tensors, torch.from_numpy(reference), torch.from_numpy(targets))

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if split not in self._splits and self.split_sizes[split] > 0:
                self._splits[split] = self._build(split)

    def fingerprint(self) -> dict[str, object]:
        """Everything the rendered faces depend on: a cache key for networks trained on them."""
        return {
            "renderer": RENDERER_VERSION,
            "image_size": self.image_size,
            "seed": self.seed,
            "identities": self.split_sizes,
            "min_intensity": self.min_intensity,
        }

    def training_faces(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The real training faces ``[N, 3, S, S]`` in ``[-1, 1]`` and their labels ``[N]``,
        for networks trained offline on them."""
        train = self.split("train")
        return torch.stack([to_tensor(train.image(i)) for i in range(len(train))]), train.labels

    def transfer_oracle(self, cache_dir: str | Path) -> nn.Module:
        """The independent judge of transfers to this data's ground truth: an oracle expression
        classifier trained on the real training faces, cached in ``cache_dir``
        (:func:`~exprgan.evaluation.oracle.rendered_oracle`). A model's test asks its data for
        one; data sets without ground-truth transfers have no such method."""
        return rendered_oracle(self, cache_dir)

    def split(self, name: str) -> _Items:
        """The rendered items of ``name`` (``train``, ``val`` or ``test``)."""
        if name not in self._splits:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[name])
        return self._splits[name]
