"""Training callbacks."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's :class:`~exprgan.callbacks.ModelCheckpoint` whose ``last.ckpt`` is
    the model training stopped with.

    Lightning saves ``last.ckpt`` only beside a periodic checkpoint, so a run stopped between two
    of them (``max_time``, ``max_steps`` not a multiple of ``every_n_train_steps``) would leave a
    ``last.ckpt`` up to ``every_n_train_steps`` old, and ``exprgan test --ckpt_path last.ckpt``
    would judge an older model than the one trained. This one also saves ``last.ckpt`` when
    training ends at a step it has not saved. Arguments as Lightning's.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        stale = self._last_global_step_saved != trainer.global_step
        if self.save_last and stale and not self._should_skip_saving_checkpoint(trainer):
            monitor_candidates = self._monitor_candidates(trainer)
            if self.save_last == "link":  # a link to the last periodic file would be stale too
                self._save_checkpoint(trainer, self.format_checkpoint_name(monitor_candidates))
            self._save_last_checkpoint(trainer, monitor_candidates)
        super().on_train_end(trainer, pl_module)
