"""Shared fixtures: seeded RNG, offline torch hub, tiny tensors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch


def load_script(path: Path, name: str) -> ModuleType:
    """A script outside the package (``experiments/analysis/``, ``benchmarks/``) imported from its
    path as module ``name`` (registered, so its dataclasses can look their module up)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
    """A JointExprGAN small enough for a CPU test: 32 px, narrow GAN, small classifier head.

    Overrides are flat: a field of :class:`~exprgan.options.Networks` or
    :class:`~exprgan.options.Optimization` (``backbone="vgg19"``, ``gan_lr=1e-3``) goes into
    its group; ``loss_weights`` is a mapping of the weights to change.
    """
    from dataclasses import fields

    from exprgan.joint import JointExprGAN
    from exprgan.options import Networks, Optimization

    groups = {
        "networks": dict(
            backbone="resnet18",
            pretrained=False,
            classifier_hidden_features=32,
            perceptual_pretrained=False,
            perceptual_layer_weights=(1.0,),
            gan_width=8,
        ),
        "optimization": {},
    }
    for group, cls in (("networks", Networks), ("optimization", Optimization)):
        groups[group].update(overrides.pop(group, None) or {})
        names = {f.name for f in fields(cls)}
        groups[group].update({k: overrides.pop(k) for k in list(overrides) if k in names})
    options = dict(num_expressions=7, image_size=32, **groups)
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


def reporting_trainer(run_dir, **overrides):
    """:func:`tiny_trainer` with :class:`~exprgan.callbacks.EvaluationReport`, as the CLI runs: results
    in ``run_dir/results``, networks trained offline cached in ``run_dir/offline``."""
    from exprgan.callbacks import EvaluationReport

    return tiny_trainer(default_root_dir=str(run_dir), callbacks=[EvaluationReport()], **overrides)


# --- real photographs with the dlib backend (test_dlib_backend, test_recognize, test_transfer_tool) ---
DEMO_SIZE = 64  # the image size of the demo checkpoint


def fail_in_ci_without_dlib() -> None:
    """The CI rule, called at the top of each dlib-based test module: in CI a missing dlib fails, never skips."""
    import importlib.util
    import os

    from exprgan.preprocessing.dlib_backend import DEFAULT_PREDICTOR

    if os.environ.get("CI") and (importlib.util.find_spec("dlib") is None or not DEFAULT_PREDICTOR.is_file()):
        # .ci/run installs both: in CI these tests must run, never skip
        pytest.fail(f"CI without dlib-bin or {DEFAULT_PREDICTOR}: .ci/run should have installed them", pytrace=False)


@pytest.fixture(scope="session")
def dlib_backend():
    """dlib's detector and predictor (loaded once), or a skip saying what to install."""
    from exprgan.preprocessing.dlib_backend import DEFAULT_PREDICTOR

    pytest.importorskip("dlib", reason="the dlib backend needs: pip install dlib-bin")
    if not DEFAULT_PREDICTOR.is_file():
        pytest.skip(f"{DEFAULT_PREDICTOR} missing: apt-get install libdlib-data")
    from exprgan.preprocessing.dlib_backend import DlibBackend

    return DlibBackend()


@pytest.fixture(scope="session")
def demo_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """An untrained tiny model (DEMO_SIZE px, the demo's 7 class names), saved as a Lightning checkpoint."""
    from exprgan.datamodules.face_renderer import EXPRESSIONS

    model = tiny_model(image_size=DEMO_SIZE, classifier_hidden_features=16, class_names=EXPRESSIONS)
    trainer = tiny_trainer(max_steps=0)
    trainer.strategy.connect(model)
    path = tmp_path_factory.mktemp("ckpt") / "demo.ckpt"
    trainer.save_checkpoint(path)
    return path
