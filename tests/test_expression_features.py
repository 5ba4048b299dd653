"""The small expression CNN: trained offline, cached, the oracle's network and (``networks.perceptual_network:
expression``) L_per's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exprgan.losses import PerceptualLoss
from exprgan.models import ExpressionCNN
from exprgan.offline import cached, train_classifier
from tests.conftest import tiny_data, tiny_model, tiny_trainer


def squares(n_per_class: int = 12, classes: int = 3, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey noise with a bright square whose corner tells the class: a task any classifier learns."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = 0.1 * torch.randn(len(labels), 3, size, size, generator=generator) - 0.5
    for k, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        images[k, :, 4 + 14 * row : 14 + 14 * row, 4 + 14 * col : 14 + 14 * col] = 0.9
    return images, labels


def test_train_classifier_learns_a_separable_task_deterministically() -> None:
    """Catches: a loop that does not step (accuracy at chance), labels misaligned with images
    by the shuffle, a seed that does not fix the result."""
    images, labels = squares()
    network = ExpressionCNN(3, width=8)
    first = train_classifier(network, images, labels, epochs=10, batch_size=12, progress=False, min_steps=0)
    logits = first(images)
    assert float((logits.argmax(1) == labels).float().mean()) == 1.0
    a = train_classifier(_seeded(), images, labels, epochs=2, batch_size=12, progress=False, min_steps=0)
    b = train_classifier(_seeded(), images, labels, epochs=2, batch_size=12, progress=False, min_steps=0)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _seeded() -> nn.Module:
    torch.manual_seed(0)
    return ExpressionCNN(3, width=8)


def test_cached_trains_once_per_key(tmp_path) -> None:
    """Catches: retraining on every call (the cache unused), a cache shared across different
    keys (a network trained on other data reused), weights not restored from the file."""
    calls = []

    def train(network: nn.Module) -> None:
        calls.append(1)
        with torch.no_grad():
            network.weight.fill_(len(calls))

    first = cached(nn.Linear(2, 2), tmp_path, "net", {"data": 1}, train)
    again = cached(nn.Linear(2, 2), tmp_path, "net", {"data": 1}, train)
    other = cached(nn.Linear(2, 2), tmp_path, "net", {"data": 2}, train)
    assert len(calls) == 2 and len(list(tmp_path.glob("net-*.pt"))) == 2
    assert torch.equal(first.weight, again.weight) and float(other.weight[0, 0]) == 2.0


class Doubling(nn.Module):
    """Feature maps ``[x, 2x]``: known answers for the perceptual loss."""

    def feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [images, 2 * images]


def test_perceptual_loss_with_another_network_compares_each_face_with_the_other_transfer() -> None:
    """``P(I_a, I_d) + P(I_b, I_c)`` over the network's first ``len(layer_weights)`` maps.
    Catches: I_c compared with I_a (its own source) instead of I_b, layer weights misapplied,
    a network that is not frozen."""
    a, b, c, d = (torch.full((1, 3, 4, 4), v) for v in (0.0, 1.0, 0.25, 0.5))
    one = PerceptualLoss(layer_weights=(1.0,), network=Doubling())
    assert float(one(a, b, c, d)) == pytest.approx(0.5 + 0.75)  # |a - d| + |b - c|
    two = PerceptualLoss(layer_weights=(1.0, 0.5), network=Doubling())
    assert float(two(a, b, c, d)) == pytest.approx(1.25 + 0.5 * 2 * 1.25)
    with pytest.raises(ValueError, match="3 layer weights for a network with 2 feature maps"):
        PerceptualLoss(layer_weights=(1.0, 1.0, 1.0), network=Doubling())(a, b, c, d)
    with pytest.raises(ValueError, match="5 layer weights for a network with 4 feature maps"):
        PerceptualLoss(network=ExpressionCNN(7, width=4))  # VGG19's five default weights: at once
    features = PerceptualLoss(layer_weights=(1.0,), network=ExpressionCNN(7, width=4)).train()
    assert not features.network.training and not any(p.requires_grad for p in features.network.parameters())


def test_fit_trains_the_expression_network_on_the_training_faces_and_caches_it(tmp_path, monkeypatch) -> None:
    """Catches: the perceptual loss left with a random network (never trained), the network
    trained on something other than the data's training faces, no cache under the run."""
    data = tiny_data(train_identities=4)
    model = tiny_model(perceptual_network="expression", perceptual_layer_weights=(0.5, 1.0))
    random_start = {k: v.clone() for k, v in model.perceptual.network.state_dict().items()}
    seen = []

    def recorded(network, images, labels, *args, **kwargs):
        seen.append((images, labels))
        return train_classifier(network, images, labels, *args, **kwargs, min_steps=0)  # the wiring, not the training

    monkeypatch.setattr("exprgan.offline.train_classifier", recorded)
    tiny_trainer(max_steps=3, default_root_dir=tmp_path).fit(model, datamodule=data)
    (path,) = (tmp_path / "offline").glob("expression-features-*.pt")
    trained = torch.load(path, weights_only=True)
    state = model.perceptual.network.state_dict()
    assert all(torch.equal(state[k], trained[k]) for k in trained)
    assert not torch.equal(state["head.weight"], random_start["head.weight"])
    images, labels = data.training_faces()
    ((trained_on, trained_labels),) = seen
    assert torch.equal(trained_on, images) and torch.equal(trained_labels, labels) and len(labels) == 4 * 7
    tiny_trainer(max_steps=3, default_root_dir=tmp_path).fit(
        tiny_model(perceptual_network="expression", perceptual_layer_weights=(0.5, 1.0)), datamodule=data
    )
    assert len(seen) == 1  # the second run loads the cache


def test_the_expression_network_needs_data_with_training_faces(tmp_path) -> None:
    """A clear error, naming the option and the data module, before any training."""
    import pytorch_lightning as pl

    class Plain(pl.LightningDataModule):
        pass

    model = tiny_model(perceptual_network="expression", perceptual_layer_weights=(1.0,))
    with pytest.raises(ValueError, match="perceptual_network 'expression'.*Plain has no training_faces"):
        tiny_trainer(max_steps=1, default_root_dir=tmp_path).fit(model, datamodule=Plain())
