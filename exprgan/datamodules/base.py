"""The DataModule base every data set shares: the pair stream and its resumable position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from exprgan.datamodules.pairs import Sampling, UnpairedPairs, check_sampling


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, 3]`` -> ``float [3, H, W]`` in ``[-1, 1]`` (read-only inputs are fine: NumPy copies)."""
    return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1).div_(127.5).sub_(1.0)  # astype copies


class PairDataModule(pl.LightningDataModule):
    """Base of the exprgan DataModules: trains on unpaired pairs, evaluates on single images.

    Subclasses set ``num_expressions`` and ``class_names``, build their splits in ``setup``
    and implement :meth:`split`; its ``train`` split feeds :meth:`train_labels` and
    :meth:`load_train_image`, which the base class turns into the
    :class:`~exprgan.datamodules.pairs.UnpairedPairs` stream, and its ``val`` and ``test``
    splits the evaluation loaders. The position of the pair stream is kept in checkpoints
    (``state_dict``), so a run resumed mid-epoch continues with exactly the pairs it would
    have seen.

    Args:
        batch_size: pairs per training step (per DDP rank).
        eval_batch_size: images per validation/test/predict batch.
        num_workers: DataLoader workers.
        seed: seed of the pair stream and of any split.
        steps_per_epoch: training steps per epoch; default: enough pairs to show every
            training image about once per epoch over all ranks.
        sampling: how the pair stream draws its pairs: ``cycled`` (every step one target
            expression, images uniform within a class: rare classes as often as common ones)
            or ``shuffled`` (images uniform over the training set, labels at its own
            frequencies: a control with almost no re-balancing); see :mod:`exprgan.datamodules.pairs`.
    """

    num_expressions: int
    class_names: Sequence[str]

    def __init__(
        self,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        sampling: Sampling = "cycled",
    ) -> None:
        super().__init__()
        check_sampling(sampling)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.sampling = sampling
        self.next_step = 0
        self._pairs: UnpairedPairs | None = None

    # --- what a data set provides -------------------------------------------------------
    def split(self, name: str) -> Dataset:
        """Split ``name``: ``train``, ``val`` or ``test``.

        Its items are dicts of tensors (``image``, ``label``, ...); it also has ``labels`` (an
        array) and ``image(index)`` (``uint8 [H, W, 3]``, augmented in the training split when
        configured).
        """
        raise NotImplementedError

    def train_labels(self) -> Sequence[int]:
        """Label of every training image."""
        return self.split("train").labels.tolist()

    def load_train_image(self, index: int) -> torch.Tensor:
        """Training image ``index`` as ``[3, H, W]`` in ``[-1, 1]``, augmented if configured."""
        return to_tensor(self.split("train").image(index))

    # --- the pair stream ---------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        labels = self.train_labels()
        steps = self.steps_per_epoch or max(1, len(labels) // (2 * self.batch_size * world_size))
        self._pairs = UnpairedPairs(
            labels,
            self.load_train_image,
            self.num_expressions,
            self.batch_size,
            steps,
            seed=self.seed,
            start_step=self.next_step,
            rank=rank,
            world_size=world_size,
            class_names=self.class_names,
            sampling=self.sampling,
        )
        return DataLoader(self._pairs, batch_size=None, num_workers=self.num_workers, pin_memory=self._pin())

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.split("val"))

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.split("test"))

    def predict_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.split("test"))

    def eval_dataloader(self, dataset: Dataset) -> DataLoader:
        """A loader over single evaluation items, in order."""
        return DataLoader(dataset, self.eval_batch_size, num_workers=self.num_workers, pin_memory=self._pin())

    def _pin(self) -> bool:
        return self.trainer is not None and type(self.trainer.accelerator).__name__ == "CUDAAccelerator"

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # runs in the main process for the batch about to be trained on (not the prefetched one)
        trainer = self.trainer
        if trainer is not None and trainer.training and isinstance(batch, dict) and "step" in batch:
            self.next_step = int(batch["step"]) + 1
            if self._pairs is not None:
                self._pairs.start_step = self.next_step  # the next epoch's iterator starts here
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"next_step": self.next_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.next_step = int(state_dict["next_step"])
