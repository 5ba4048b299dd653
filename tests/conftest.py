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
