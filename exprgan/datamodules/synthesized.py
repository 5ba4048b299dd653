"""``SynthesizedDataModule``: a data set's training images plus ``k`` synthesised transfers of each (Fig. 12).

Wraps any exprgan DataModule and a folder written by ``exprgan synthesize``. Training
images: the ``N`` originals (rows ``0 .. N-1``, as the inner DataModule serves them) followed
by the first ``per_image`` transfers of every original (``index.csv`` rows with
``rank < per_image``), labelled with their target expression: ``(1 + k) N`` images, the
paper's ``0N .. 6N``. Validation, test and predict are the inner DataModule's.

In a config (LightningCLI nests the inner DataModule's ``class_path``)::

    data:
      class_path: exprgan.datamodules.synthesized.SynthesizedDataModule
      init_args:
        data:
          class_path: exprgan.datamodules.RAFDBDataModule
          init_args: {root: /data/RAF-DB, image_size: 256}
        synthesized: synth/rafdb
        per_image: 2            # 2N

The whole model trains on this set unchanged. For Fig. 12, where the number of synthesised
images the *classifier* sees is the variable, set ``model.synthesized_images: false``: the
classifier then learns from exactly these ``(1 + k) N`` images (``0N``: originals only) and
not also from the generator's on-line transfers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader

from exprgan.datamodules.base import PairDataModule, to_tensor


class SynthesizedDataModule(PairDataModule):
    """Originals plus the first ``per_image`` synthesised transfers of each (see the module docstring).

    Batch sizes, workers, seed and ``steps_per_epoch`` are the inner DataModule's; an epoch
    (by default) covers the enlarged set once.

    Args:
        data: the data set's DataModule (its training split is the one synthesised from).
        synthesized: a folder written by ``exprgan synthesize`` from that training split.
        per_image: ``k``, transfers per original image to add (0: originals only).
        augment_synthesized: augment the synthesised images as the inner DataModule
            augments its originals (when it has an ``augmentation``).
    """

    def __init__(
        self,
        data: PairDataModule,
        synthesized: str,
        per_image: int = 6,
        augment_synthesized: bool = True,
    ) -> None:
        super().__init__(data.batch_size, data.eval_batch_size, data.num_workers, data.seed, data.steps_per_epoch)
        if per_image < 0:
            raise ValueError(f"per_image must be >= 0, got {per_image}")
        self.data = data
        self.synthesized = synthesized
        self.per_image = per_image
        self.augment_synthesized = augment_synthesized
        self.num_expressions = data.num_expressions
        self.class_names = list(data.class_names)
        self.image_size = int(data.image_size)  # type: ignore[attr-defined]  # every exprgan data set has one
        self._index: pd.DataFrame | None = None
        self._num_originals = 0
        self._augment: Any = None

    @property
    def poses(self) -> list[str]:
        """The inner DataModule's poses (Multi-PIE's per-pose accuracy), ``[]`` when it has none."""
        return list(getattr(self.data, "poses", None) or [])

    # --- the synthesised rows ------------------------------------------------------------------
    def _load_index(self) -> pd.DataFrame:
        folder = Path(self.synthesized)
        index_path, meta_path = folder / "index.csv", folder / "synthesis.json"
        if not index_path.is_file() or not meta_path.is_file():
            raise FileNotFoundError(
                f"{folder} has no index.csv / synthesis.json: write it first with `exprgan synthesize` "
                "(or let an interrupted run finish)"
            )
        meta = json.loads(meta_path.read_text())
        index = pd.read_csv(index_path, keep_default_na=False)
        labels = [int(y) for y in self.data.train_labels()]
        if meta.get("num_train") != len(labels):
            raise ValueError(
                f"{folder} was synthesised from {meta.get('num_train')} training images, this data has "
                f"{len(labels)}: another data set, fold or configuration?"
            )
        if list(meta.get("class_names", [])) != self.class_names:
            raise ValueError(f"{folder} has classes {meta.get('class_names')}, the data {self.class_names}")
        available = int(index["rank"].max()) + 1 if len(index) else 0
        if self.per_image > available:
            raise ValueError(
                f"per_image {self.per_image}: {folder} holds only {available} transfers per image "
                f"(run exprgan synthesize with --per-image {self.per_image})"
            )
        index = index[index["rank"] < self.per_image]
        sources = index["source"].to_numpy()
        if len(index) and (index["source_label"].to_numpy() != [labels[s] for s in sources]).any():
            raise ValueError(f"{folder}: source labels differ from this training split's: another split or fold?")
        return index.sort_values(["rank", "source"], kind="stable").reset_index(drop=True)

    def setup(self, stage: str | None = None) -> None:
        self.data.trainer = self.trainer
        self.data.setup(stage)
        if stage in (None, "fit") and self._index is None:
            self._index = self._load_index()
            self._num_originals = len(self.data.train_labels())
            augmentation = getattr(self.data, "augmentation", None)
            if self.augment_synthesized and augmentation is not None:
                from exprgan.datamodules.augment import Augmenter

                self._augment = Augmenter(augmentation)

    def synthesized_index(self) -> pd.DataFrame:
        """The synthesised rows in use (``index.csv`` rows with ``rank < per_image``); after ``setup("fit")``."""
        if self._index is None:
            self.setup("fit")
        assert self._index is not None
        return self._index

    # --- PairDataModule ---------------------------------------------------------------------
    def train_labels(self) -> Sequence[int]:
        return [*self.data.train_labels(), *self.synthesized_index()["label"].astype(int).tolist()]

    def load_train_image(self, index: int) -> torch.Tensor:
        synthesized = self.synthesized_index()
        originals = self._num_originals
        if index < originals:
            return self.data.load_train_image(index)
        from exprgan.datamodules.images import fit_square
        from exprgan.datamodules.io import read_image

        path = Path(self.synthesized) / synthesized["path"].iloc[index - originals]
        image = fit_square(read_image(path), self.image_size)
        if self._augment is not None:
            image = self._augment(image)
        return to_tensor(image)

    def val_dataloader(self) -> DataLoader:
        return self.data.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self.data.test_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.data.predict_dataloader()

    def teardown(self, stage: str) -> None:
        self.data.teardown(stage)
