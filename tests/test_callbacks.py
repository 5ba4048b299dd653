"""exprgan.callbacks.ModelCheckpoint: last.ckpt is the model training stopped with; the synthesis
config's moving average of the weights is what its checkpoints hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint

from exprgan.callbacks import EMAWeightAveraging, ModelCheckpoint
from exprgan.tools.checkpoints import load_model
from tests.conftest import tiny_data, tiny_model, tiny_trainer

SYNTHESIS = Path(__file__).resolve().parents[1] / "experiments" / "synthesis.yaml"


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


class _WeightsAfterEachBatch(pl.Callback):
    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def test_the_synthesis_checkpoints_hold_the_moving_average_of_each_batchs_weights(tmp_path) -> None:
    """experiments/synthesis.yaml's EMAWeightAveraging: one update per batch (not per optimiser
    step: 3 a batch here), the first a copy; last.ckpt and load_model give the average, not the
    weights training stopped with."""
    (entry,) = [c for c in yaml.safe_load(SYNTHESIS.read_text())["trainer"]["callbacks"] if "EMA" in c["class_path"]]
    assert entry["class_path"] == "exprgan.callbacks.EMAWeightAveraging"
    decay = entry["init_args"]["decay"]
    recorder = _WeightsAfterEachBatch()
    callbacks = [recorder, EMAWeightAveraging(decay=decay), ModelCheckpoint(dirpath=tmp_path, save_last=True)]
    model = tiny_model()
    tiny_trainer(max_steps=9, callbacks=callbacks, enable_checkpointing=True).fit(model, tiny_data())
    assert len(recorder.states) == 3
    expected = dict(recorder.states[0])
    for state in recorder.states[1:]:
        expected = {k: decay * e + (1 - decay) * state[k] if e.is_floating_point() else e for k, e in expected.items()}
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert int(saved["averaging_state"]["n_averaged"]) == 3
    loaded = load_model(tmp_path / "last.ckpt").state_dict()
    floating = [k for k, v in expected.items() if v.is_floating_point()]
    for key in floating:
        torch.testing.assert_close(saved["state_dict"][key], expected[key], rtol=0, atol=1e-6)
        torch.testing.assert_close(loaded[key], expected[key], rtol=0, atol=1e-6)
    # the premise: the average is far (10 x the atol above) from the weights training stopped with, so a
    # checkpoint of the last weights fails the comparisons. Safe on any machine: each of Adam's first
    # steps moves a weight with a non-zero gradient by about gan_lr (2e-4), and G took two since the
    # first state, so some weight of G is about 4e-4 from the average (1e-5 is 40 times less).
    last = recorder.states[-1]
    assert any((expected[k] - last[k]).abs().max() > 1e-5 for k in floating if k.startswith("generator."))
