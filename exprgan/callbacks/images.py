"""A grid of the training pairs, their transfers and reconstructions, logged as training goes."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from exprgan.loggers import log_image, pair_grid
from exprgan.objective import Pairs


class TrainingImages(pl.Callback):
    """Every ``every_n_batches`` training batches (by the pair stream's ``step``), log ``[I_a, I_b,
    I_c, I_d, I'_a, I'_b]`` (a row each, up to 8 pairs) as ``train/pairs``, from G after the batch."""

    def __init__(self, every_n_batches: int = 500) -> None:
        if every_n_batches < 1:
            raise ValueError(f"every_n_batches must be >= 1, got {every_n_batches}")
        self.every_n_batches = every_n_batches

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: dict[str, torch.Tensor], batch_idx: int
    ) -> None:
        step = int(batch["step"]) if "step" in batch else batch_idx
        if step % self.every_n_batches or not trainer.is_global_zero or trainer.logger is None:
            return
        pairs = Pairs.from_batch(batch)
        out = pl_module.generator(pairs.a, pairs.b, pairs.y_a, pairs.y_b)
        rows = [pairs.a, pairs.b, out.image_c, out.image_d, out.recon_a, out.recon_b]
        log_image(trainer.logger, "train/pairs", pair_grid(rows), step=trainer.global_step)
