"""The training step's shortcuts are exact: one backbone pass shared by the G and C phases,
no graph through real faces in the perceptual network, ``transfer`` decoding once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from exprgan.joint import OPTIMIZER_STEPS_PER_BATCH
from tests.conftest import tiny_model, tiny_trainer

PAPER_LIKE = dict(backbone="vgg19", perceptual_layer_weights=(0.5, 1.0))


class FixedBatches(IterableDataset):
    """The same few pair batches every time (labels follow the target-expression cycle)."""

    def __init__(self, batches: int = 2, pairs: int = 2, size: int = 32, n: int = 7) -> None:
        generator = torch.Generator().manual_seed(123)
        self.items = []
        for step in range(batches):
            label_a = torch.full((pairs,), step % n)
            self.items.append(
                {
                    "image_a": torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1,
                    "image_b": torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1,
                    "label_a": label_a,
                    "label_b": (label_a + 1 + torch.arange(pairs) % (n - 1)) % n,
                    "step": torch.tensor(step),
                }
            )

    def __iter__(self):
        yield from self.items


class LossRecorder(Callback):
    """The logged loss terms after every training batch."""

    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append({k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k})


def _train(model: nn.Module, batches: int = 1) -> LossRecorder:
    recorder = LossRecorder()
    tiny_trainer(max_steps=OPTIMIZER_STEPS_PER_BATCH * batches, callbacks=[recorder]).fit(
        model, DataLoader(FixedBatches(batches), batch_size=None)
    )
    return recorder


def _without_dropout(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.parametrize("representation", [True, False])
def test_the_shared_backbone_gives_the_classifiers_own_losses(representation: bool) -> None:
    """``g/classification`` and ``c/classification`` equal the classifier run whole on the faces each phase
    should see: G's L_C on what reaches G, C's loss on real + generated faces."""
    torch.manual_seed(0)
    model = _without_dropout(tiny_model(expression_representation=representation, **PAPER_LIKE))
    seen: dict[str, torch.Tensor] = {}
    forward = model.generator.forward

    def recording_forward(*args, **kwargs):
        out = forward(*args, **kwargs)
        seen.update(
            c=out.image_c.detach(), d=out.image_d.detach(), code_a=out.code_a.detach(), code_b=out.code_b.detach()
        )
        return out

    model.generator.forward = recording_forward
    descend = model._descend
    expected: dict[str, float] = {}

    def checking_descend(optimizer, network, loss):
        batch = FixedBatches(1).items[0]
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        generated, generated_labels = torch.cat([seen["c"], seen["d"]]), torch.cat([y_b, y_a])
        with torch.no_grad():
            if network is model.generator:  # before G's update: the classifier as G's loss sees it
                code = model.generator.encode(generated) if representation else None
                logits = model.classifier(generated, code)
                labels = generated_labels
                if representation:  # the real faces reach G through their representation only
                    real_code = torch.cat([seen["code_a"], seen["code_b"]])
                    logits = torch.cat([model.classifier(torch.cat([a, b]), real_code), logits])
                    labels = torch.cat([y_a, y_b, labels])
                expected["g/classification"] = F.cross_entropy(logits, labels).item()
            if network is model.classifier:  # after G's update: real faces' codes from before it
                real_code = torch.cat([seen["code_a"], seen["code_b"]]) if representation else None
                generated_code = model.generator.encode(generated) if representation else None
                logits = torch.cat(
                    [model.classifier(torch.cat([a, b]), real_code), model.classifier(generated, generated_code)]
                )
                expected["c/classification"] = F.cross_entropy(logits, torch.cat([y_a, y_b, generated_labels])).item()
        descend(optimizer, network, loss)

    model._descend = checking_descend
    logged = _train(model).losses[0]
    assert expected.keys() == {"g/classification", "c/classification"}
    for name, value in expected.items():
        assert logged[name] == pytest.approx(value, rel=1e-5), name


@pytest.mark.parametrize("synthesized", [True, False])
def test_the_backbone_sees_each_face_once_per_step(synthesized: bool) -> None:
    torch.manual_seed(0)
    model = tiny_model(synthesized_images=synthesized, **PAPER_LIKE)
    seen: list[int] = []
    model.classifier.backbone.register_forward_hook(lambda module, args, output: seen.append(len(args[0])))
    _train(model)
    pairs = 2
    assert sum(seen) == (4 if synthesized else 2) * pairs  # [I_a, I_b] (+ [I_c, I_d]), once for G and C


def test_the_perceptual_network_has_no_graph_through_real_faces() -> None:
    model = tiny_model(**PAPER_LIKE)
    grad_enabled: list[bool] = []
    model.perceptual.network.register_forward_hook(
        lambda module, args, output: grad_enabled.append(torch.is_grad_enabled())
    )
    _train(model)
    assert grad_enabled == [False, True]  # [I_a, I_b] without a graph, then [I_c, I_d]


def test_a_perceptual_weight_of_0_builds_no_vgg() -> None:
    model = tiny_model(loss_weights=dict(perceptual=0.0))
    assert model.perceptual is None
    assert "g/perceptual" not in _train(model).losses[0]


def test_channels_last_gives_the_same_losses() -> None:
    torch.manual_seed(0)
    plain = _train(tiny_model(**PAPER_LIKE), batches=2).losses
    torch.manual_seed(0)
    model = tiny_model(channels_last=True, **PAPER_LIKE)
    fast = _train(model, batches=2).losses
    assert model.classifier.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)
    for expected, got in zip(plain, fast):
        for name in expected:
            assert got[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name


def test_transfer_decodes_the_forward_passs_image_c_or_the_reconstruction() -> None:
    torch.manual_seed(0)
    generator = tiny_model(generator_identity_init=False).eval().generator
    identity, reference = torch.rand(5, 3, 32, 32) * 2 - 1, torch.rand(5, 3, 32, 32) * 2 - 1
    identity_labels = torch.tensor([0, 1, 2, 3, 4])
    reference_labels = torch.tensor([1, 1, 5, 3, 0])  # pairs 1 and 3 share their label: reconstructions
    with torch.no_grad():
        transferred = generator.transfer(identity, reference, identity_labels, reference_labels)
        swap = [0, 2, 4]
        out = generator(identity[swap], reference[swap], identity_labels[swap], reference_labels[swap])
        same = [1, 3]
        reconstruction = generator.reconstruct(identity[same])
    torch.testing.assert_close(transferred[swap], out.image_c, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(transferred[same], reconstruction, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(transferred[0], identity[0], atol=1e-3)  # the generator did change the images


@pytest.mark.parametrize(
    ("representation", "backbone"),
    [(True, "vgg19"), (False, "vgg19"), (True, "resnet18")],
    ids=["vgg19", "no-ExpR", "batchnorm"],
)
def test_gs_classification_gradient_is_the_classifier_run_whole(representation: bool, backbone: str) -> None:
    """With every other term weighted 0, G's gradient is ``d L_C / d G`` of the classifier run
    whole on the step's faces in one batch (through the pixels and the codes): the shared
    backbone loses nothing, BatchNorm included."""
    torch.manual_seed(0)
    weights = dict(adversarial=0, interpolation=0, reconstruction=0, perceptual=0, pixel_sum=0, total_variation=0)
    model = _without_dropout(
        tiny_model(
            loss_weights={**weights, "classification": 2.0},
            expression_representation=representation,
            **{**PAPER_LIKE, "backbone": backbone},
        )
    )
    batch = FixedBatches(1).items[0]
    a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
    parameters = list(model.generator.parameters())
    out = model.generator(a, b, y_a, y_b)
    generated = torch.cat([out.image_c, out.image_d])
    codes = torch.cat([out.code_a, out.code_b, model.generator.encode(generated)]) if representation else None
    logits = model.classifier(torch.cat([a, b, generated]), codes)  # one batch, as C's phase sees it
    labels = torch.cat([y_a, y_b, y_b, y_a])
    n = 0 if representation else 2 * len(a)  # without codes the real faces have no path to G
    expected = torch.autograd.grad(2.0 * F.cross_entropy(logits[n:], labels[n:]), parameters, allow_unused=True)

    descend, got = model._descend, {}

    def recording_descend(optimizer, network, loss):
        descend(optimizer, network, loss)
        if network is model.generator:
            got.update({id(p): p.grad.clone() if p.grad is not None else None for p in parameters})

    model._descend = recording_descend
    _train(model)
    assert any(g is not None and g.abs().sum() > 0 for g in expected)
    for p, grad in zip(parameters, expected):
        if grad is None:
            assert got[id(p)] is None or not got[id(p)].any()
        else:
            torch.testing.assert_close(got[id(p)], grad, rtol=1e-4, atol=1e-7)
