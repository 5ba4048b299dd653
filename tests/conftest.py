"""Shared fixtures: seeded RNG, offline torch hub, tiny tensors."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test starts seeded, with an empty torch hub so no cached weights leak in."""
    torch.manual_seed(0)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    monkeypatch.setenv("WANDB_MODE", "offline")


def images(batch: int, size: int, channels: int = 3) -> torch.Tensor:
    """Random images in [-1, 1]."""
    return torch.rand(batch, channels, size, size) * 2 - 1


def tiny_model(**overrides):
    """A JointExprGAN small enough for a CPU test: 32 px, narrow GAN, small classifier head."""
    from exprgan.joint import JointExprGAN

    options = dict(
        num_expressions=7,
        image_size=32,
        backbone="resnet18",
        pretrained=False,
        classifier_hidden_features=32,
        perceptual_pretrained=False,
        perceptual_layer_weights=(1.0,),
        gan_width=8,
        image_log_every_n_steps=0,
    )
    options.update(overrides)
    return JointExprGAN(**options)


def tiny_data(**overrides):
    """Synthetic faces at 32 px: a handful of identities, batches of 2 pairs."""
    from exprgan.datamodules import SyntheticFacesDataModule

    options = dict(
        image_size=32, train_identities=6, val_identities=2, test_identities=2, batch_size=2, eval_batch_size=8
    )
    options.update(overrides)
    return SyntheticFacesDataModule(**options)


def tiny_trainer(**overrides):
    """A quiet CPU trainer: no logger, no checkpoints, no progress bar unless asked."""
    import pytorch_lightning as pl

    options = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    options.update(overrides)
    return pl.Trainer(**options)
