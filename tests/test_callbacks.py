"""exprgan.callbacks.ModelCheckpoint: last.ckpt is the model training stopped with."""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint

from exprgan.callbacks import ModelCheckpoint
from tests.conftest import tiny_data, tiny_model, tiny_trainer


def _last_step(checkpoint_class, tmp_path, max_steps: int) -> int:
    """The global step of last.ckpt after ``max_steps`` optimiser steps, saving every 6."""
    callback = checkpoint_class(dirpath=tmp_path, save_last=True, every_n_train_steps=6)
    trainer = tiny_trainer(max_steps=max_steps, callbacks=[callback], enable_checkpointing=True)
    trainer.fit(tiny_model(), tiny_data())
    return torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]


def test_lightning_leaves_last_ckpt_at_the_previous_periodic_save(tmp_path) -> None:
    """Why the subclass exists: a stop between two periodic saves leaves an old last.ckpt."""
    step = _last_step(LightningModelCheckpoint, tmp_path, max_steps=9)
    assert step == 6


@pytest.mark.parametrize("save_last", [True, "link"])
def test_last_ckpt_holds_the_final_step_and_weights(tmp_path, save_last) -> None:
    model = tiny_model()
    callback = ModelCheckpoint(dirpath=tmp_path, save_last=save_last, every_n_train_steps=6)
    trainer = tiny_trainer(max_steps=9, callbacks=[callback], enable_checkpointing=True)
    trainer.fit(model, tiny_data())
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 9
    live = model.state_dict()
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in live.items())


def test_a_stop_on_a_periodic_save_writes_nothing_more(tmp_path) -> None:
    step = _last_step(ModelCheckpoint, tmp_path, max_steps=12)
    assert step == 12
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch=0-step=12.ckpt", "last.ckpt"]
