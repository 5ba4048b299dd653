"""Lightning's ModelCheckpoint, with a ``last.ckpt`` of the model training stopped with."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's :class:`~pytorch_lightning.callbacks.ModelCheckpoint` whose ``last.ckpt`` is
    the model training stopped with.

    Lightning saves ``last.ckpt`` only beside a periodic checkpoint, so a run stopped between two
    of them (``max_time``, ``max_steps`` not a multiple of ``every_n_train_steps``) would leave a
    ``last.ckpt`` up to ``every_n_train_steps`` old, and ``exprgan test --ckpt_path last.ckpt``
    would judge an older model than the one trained. This one also saves ``last.ckpt`` when
    training ends at a step no checkpoint was saved at (with ``save_last="link"``, as a file:
    the link would point at an older one). Arguments as Lightning's.
    """

    saved_at_step: int | None = None  # the global step of the last checkpoint the trainer saved

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.saved_at_step = trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and not trainer.fast_dev_run and self.saved_at_step != trainer.global_step:
            path = self.last_model_path or self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
            if trainer.is_global_zero and os.path.islink(path):
                os.remove(path)
            trainer.strategy.barrier("last.ckpt")
            trainer.save_checkpoint(path)
            self.last_model_path = path
        super().on_train_end(trainer, pl_module)
