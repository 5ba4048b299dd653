"""Each loss against a hand-computed value."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from exprgan.losses import (
    LAYER_WEIGHTS,
    LossWeights,
    PerceptualLoss,
    adversarial_loss,
    classification_loss,
    d_adversarial_loss,
    multiscale_adversarial_loss,
    perceptual_loss,
    pixel_sum_loss,
    reconstruction_loss,
    total_variation,
)
from exprgan.models import Generator

LN2, LN3 = math.log(2), math.log(3)


def _close(value: torch.Tensor, expected: float) -> bool:
    return abs(float(value.detach()) - expected) < 1e-6


def test_adversarial_loss_is_bce_on_logits() -> None:
    logits = torch.tensor([0.0, LN3])  # sigmoid: 1/2, 3/4
    assert _close(adversarial_loss(logits, real=True), (LN2 + math.log(4 / 3)) / 2)
    assert _close(adversarial_loss(logits, real=False), (LN2 + math.log(4)) / 2)


def test_multiscale_weights_d1_by_1_and_d2_by_half() -> None:
    logits = [torch.tensor([0.0]), torch.tensor([0.0])]
    assert _close(multiscale_adversarial_loss(logits, real=True), 1.5 * LN2)
    assert _close(
        multiscale_adversarial_loss([torch.tensor([LN3]), torch.tensor([0.0])], real=False), math.log(4) + 0.5 * LN2
    )
    with pytest.raises(ValueError, match="scales"):
        multiscale_adversarial_loss([torch.tensor([0.0])], real=True)


def test_the_discriminators_loss_averages_over_all_judged_images() -> None:
    real = [torch.tensor([LN3]), torch.tensor([0.0])]
    fake = [torch.tensor([LN3, LN3, LN3]), torch.tensor([0.0, 0.0, 0.0])]
    d1 = (math.log(4 / 3) + 3 * math.log(4)) / 4  # one real, three fake images
    d2 = LN2
    assert _close(d_adversarial_loss(real, fake), d1 + 0.5 * d2)


def test_reconstruction_loss_is_sum_of_mses() -> None:
    a, recon_a = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    b, recon_b = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    assert _close(reconstruction_loss(a, recon_a, b, recon_b), 0.25 + 1.0)


def test_pixel_sum_loss_is_an_l1_distance() -> None:
    a, b = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    c, d = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2)
    assert _close(pixel_sum_loss(a, b, c, d), 0.5)
    # the printed Eq. 10 (|a+b| - |c+d|) would be negative here; the distance is not
    assert _close(pixel_sum_loss(c, d, a, b), 0.5)
    assert _close(pixel_sum_loss(a, b, b, a), 0.0)  # a swap keeps the pixel sum


def test_total_variation_known_answer_and_gradient() -> None:
    x = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]], requires_grad=True)
    tv = total_variation(x)
    assert _close(tv, (3 + 4) / 2 + (1 + 2) / 2)
    tv.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_total_variation_trains_the_generator() -> None:
    generator = Generator(7)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    out = generator(a, b, torch.tensor([0, 1]), torch.tensor([2, 3]))
    total_variation(torch.cat([out.image_c, out.image_d])).backward()
    grads = [p.grad for p in generator.decoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_perceptual_loss_known_answer() -> None:
    x = [torch.ones(1, 1, 2, 2), torch.full((1, 2, 1, 1), 3.0)]
    y = [torch.zeros(1, 1, 2, 2), torch.ones(1, 2, 1, 1)]
    assert _close(perceptual_loss(x, y, [0.5, 0.25]), 0.5 * 1 + 0.25 * 2)
    assert LAYER_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def test_perceptual_module_pairs_a_with_d_and_b_with_c() -> None:
    loss = PerceptualLoss(pretrained=False)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert _close(loss(a, b, image_c=b, image_d=a), 0.0)
    features = loss.network
    expected = perceptual_loss(features(a), features(b), LAYER_WEIGHTS) * 2
    assert torch.allclose(loss(a, b, image_c=a, image_d=b), expected, rtol=1e-5)
    assert all(isinstance(features.features[i], nn.ReLU) for i in features.layers)


def test_perceptual_network_is_frozen_and_never_optimised() -> None:
    loss = PerceptualLoss(pretrained=False)
    loss.train()
    assert not loss.network.training
    assert not [p for p in loss.parameters() if p.requires_grad]
    generated = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    loss(real[:1], real[1:], generated[:1], generated[1:]).backward()
    assert all(p.grad is None for p in loss.parameters())
    assert generated.grad is not None and generated.grad.abs().sum() > 0
    optimiser = torch.optim.Adam(Generator(7).parameters())
    frozen = {id(p) for p in loss.parameters()}
    assert not [p for group in optimiser.param_groups for p in group["params"] if id(p) in frozen]


def test_classification_loss_is_cross_entropy() -> None:
    assert _close(classification_loss(torch.zeros(1, 2), torch.tensor([0])), LN2)
    logits = torch.tensor([[LN3, 0.0]])  # softmax 3/4, 1/4
    assert _close(classification_loss(logits, torch.tensor([1])), math.log(4))
    # weighted: (1 * ln 4/3 + 3 * ln 4) / 4; the first face's loss alone at weights (1, 0)
    two, labels = torch.tensor([[LN3, 0.0], [LN3, 0.0]]), torch.tensor([0, 1])
    expected = (math.log(4 / 3) + 3 * math.log(4)) / 4
    assert _close(classification_loss(two, labels, weights=torch.tensor([1.0, 3.0])), expected)
    assert _close(classification_loss(two, labels, weights=torch.tensor([1.0, 0.0])), math.log(4 / 3))


def test_loss_weights_defaults_are_the_papers() -> None:
    weights = LossWeights()
    assert weights.synthesized == 1  # a generated face counts as a real one in C's loss
    assert (weights.reconstruction, weights.perceptual, weights.pixel_sum, weights.total_variation) == (10, 15, 5, 5)
    with pytest.raises(ValueError, match="pixel_sum"):
        LossWeights(pixel_sum=-1)


def test_r1_penalty_of_a_linear_discriminator_is_its_weight_norm() -> None:
    from exprgan.losses import r1_penalty

    torch.manual_seed(0)
    weight_1 = torch.randn(3 * 4 * 4, requires_grad=True)
    weight_2 = torch.randn(3 * 2 * 2, requires_grad=True)
    images = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits_1 = images.flatten(1) @ weight_1  # D1: linear in the image
    logits_2 = torch.nn.functional.avg_pool2d(images, 2).flatten(1) @ weight_2  # D2 on the half-size image
    # d/dx (D1 + 0.5 D2) = w1 + 0.5 * upsample(w2) / 4, the same for every image
    upsampled = weight_2.detach().reshape(3, 2, 2).repeat_interleave(2, 1).repeat_interleave(2, 2).flatten()
    expected_grad = weight_1.detach() + 0.5 * upsampled / 4
    penalty = r1_penalty([logits_1, logits_2], images)
    assert penalty.item() == pytest.approx(expected_grad.pow(2).sum().item(), rel=1e-5)
    penalty.backward()  # the graph is kept: the penalty trains D
    assert weight_1.grad is not None
    torch.testing.assert_close(weight_1.grad, 2 * expected_grad)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty([logits_1.detach()], images.detach())
