"""Callbacks the CLI tests load by class path (``--trainer.callbacks+ tests.helpers.X``)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch


class SaveParametersPerRank(pl.Callback):
    """At the end of fit, every rank saves its parameters to ``dirpath/rank{r}.pt``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        state = {name: p.detach().cpu().clone() for name, p in pl_module.named_parameters()}
        torch.save({"world_size": trainer.world_size, "state": state}, self.dirpath / f"rank{trainer.global_rank}.pt")
