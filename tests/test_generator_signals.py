"""experiments/analysis/generator_signals.py: the diagnostics docs/experiments.md quotes give known answers."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch

from exprgan.datamodules.base import to_tensor
from tests.conftest import load_script, tiny_data, tiny_model

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "analysis" / "generator_signals.py"


@pytest.fixture(scope="module")
def signals() -> ModuleType:
    """The analysis script, imported from its path (experiments/analysis/ is not a package)."""
    return load_script(SCRIPT, "generator_signals")


def test_term_gradients_of_an_identity_generator(signals: ModuleType) -> None:
    torch.manual_seed(0)
    model = tiny_model()
    data = tiny_data()
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    grads = signals.term_gradients(model, batch)
    norm, cosine = grads["adversarial"]
    assert norm > 0 and abs(cosine - 1.0) < 1e-5
    # G returns its inputs: reconstruction (MSE) and pixel-sum (L1 at 0) have zero gradient
    assert grads["reconstruction"][0] == 0.0
    assert grads["pixel_sum"][0] == 0.0
    # moved off the identity, the L1 pixel-sum term pulls back at full strength
    with torch.no_grad():
        model.generator.decoder.to_residual.bias.fill_(0.01)
    assert signals.term_gradients(model, batch)["pixel_sum"][0] > 0


def test_pixel_directions_report_the_no_change_baseline(signals: ModuleType) -> None:
    torch.manual_seed(0)
    model = tiny_model()
    data = tiny_data()
    data.setup("test")
    figures = signals.pixel_directions(model, data)
    test = data.split("test")
    images = torch.stack([to_tensor(image.numpy()) for image in test.images])
    targets = torch.stack([to_tensor(target.numpy()) for target in test.targets])
    assert abs(figures["no change"] - float((images - targets).abs().mean())) < 1e-5
    for name in ("D", "C"):
        assert -1.0 <= figures[f"{name} cosine"] <= 1.0
        assert all(figures[f"{name} step {step:g}"] > 0 for step in signals.STEPS)
